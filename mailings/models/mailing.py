"""A mailing: its content, its language versions and A/B variants, and its audit log."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from campaigns.models import Campaign, Petition
from supporters.models import Language, Tag

# An A/B test's slice and wait: a slice small enough to leave most of the audience for the
# winner, and a wait short enough for a rapid response.
AB_SHARE_MIN, AB_SHARE_MAX = 10, 50
AB_SHARE_MESSAGE = f"A test goes to {AB_SHARE_MIN} to {AB_SHARE_MAX} percent of the audience."
AB_WAIT_MIN_HOURS, AB_WAIT_MAX_HOURS = 1, 48
AB_WAIT_MESSAGE = (
    f"The winner is chosen {AB_WAIT_MIN_HOURS} to {AB_WAIT_MAX_HOURS} hours after the send "
    "starts: a wait must end in the future, and within two days."
)


class ABMetric(models.TextChoices):
    """What an A/B test's winner is chosen by, each per message sent."""

    SIGNATURES = "signatures", "Signatures per message sent"
    CLICKS = "clicks", "Unique clickers per message sent"
    # Apple Mail's privacy protection loads every image of every message it receives.
    OPENS = "opens", "Opens per message sent (unreliable: Apple Mail opens every message)"


class ABWithoutWinner(models.TextChoices):
    SEND_A = "send_a", "Send variant A (the control) to the rest"
    WAIT = "wait", "Wait for a campaigner to pick"


class ABStatus(models.TextChoices):
    # Sending the test slice, or waiting for the wait to end.
    TESTING = "testing", "Testing"
    # No significant winner, and the campaigner chose to pick one themselves.
    AWAITING_PICK = "awaiting_pick", "Waiting for a campaigner to pick"
    # The winner's send to the rest was refused: the test drew too many complaints or
    # unsubscribes (status_reason says which).
    HELD = "held", "Held: the test drew too many complaints or unsubscribes"
    DECIDED = "decided", "Decided"
    STOPPED = "stopped", "Stopped: the rest of the audience was not sent"


class Mailing(models.Model):
    """An appeal sent to an audience of supporters: its content, audience and send state."""

    ABMetric = ABMetric
    ABWithoutWinner = ABWithoutWinner
    ABStatus = ABStatus

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        # A send to more than RALLY_APPROVAL_THRESHOLD recipients waits for a second
        # campaigner; the send queue acts on nothing in this status.
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        # An A/B test's slice is sent; the rest of the audience waits for the winner.
        WAITING_FOR_WINNER = "waiting_for_winner", "A/B test sent, waiting for the winner"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="mailings")
    # The petition the appeal asks people to sign: `{{ petition_url }}` links to it.
    petition = models.ForeignKey(
        Petition, on_delete=models.PROTECT, null=True, blank=True, related_name="mailings"
    )
    name = models.CharField(max_length=200, help_text="Internal name; supporters never see it.")
    subject = models.CharField(max_length=250)
    preheader = models.CharField(
        max_length=250, blank=True, help_text="The preview line inboxes show after the subject."
    )
    from_name = models.CharField(max_length=100)
    from_email = models.EmailField()
    reply_to = models.EmailField(blank=True)
    html_body = models.TextField(help_text="HTML with merge fields such as {{ first_name }}.")
    text_body = models.TextField(help_text="Plain-text version with the same merge fields.")

    # The audience: subscribed supporters who match every condition that is set.
    audience_include_tags = models.ManyToManyField(
        Tag, blank=True, related_name="+", help_text="Only supporters with any of these tags."
    )
    audience_exclude_tags = models.ManyToManyField(
        Tag, blank=True, related_name="+", help_text="Leave out supporters with any of these tags."
    )
    audience_signed_petition = models.ForeignKey(
        Petition,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only supporters who signed this petition.",
    )
    audience_not_signed_petition = models.ForeignKey(
        Petition,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Leave out supporters who signed this petition.",
    )
    audience_language = models.CharField(max_length=8, choices=Language.choices, blank=True)
    audience_country = models.CharField(
        max_length=2, blank=True, help_text="ISO country code, e.g. GB."
    )
    # A saved segment (supporters.Segment): its members, narrowed by the conditions above.
    audience_segment = models.ForeignKey(
        "supporters.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mailings",
        help_text="Only supporters in this saved segment (the conditions above narrow it).",
    )
    # Dormant supporters (supporters/engagement.py) are left out of every bulk mailing while
    # RALLY_EXCLUDE_DORMANT is on, unless the mailing opts in here.
    include_dormant = models.BooleanField(
        "include dormant supporters",
        default=False,
        help_text="Dormant supporters are left out of mailings to protect the list's "
        "reputation; tick to send to them too.",
    )

    class Purpose(models.TextChoices):
        APPEAL = "appeal", "Appeal"
        # The sunset flow (supporters/engagement.py): sent to dormant supporters asking whether
        # they still want mail; those who do not engage within RALLY_SUNSET_GRACE_DAYS of it
        # are suppressed with the reason "sunset".
        REPERMISSION = "repermission", "Re-permission (sunset) mailing to dormant supporters"

    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.APPEAL)
    # When the sunset flow suppressed the silent recipients of this re-permission mailing.
    sunset_applied_at = models.DateTimeField(null=True, blank=True, editable=False)

    # An A/B test (mailings/sending/ab_test.py): variants B to D (MailingVariant) go with this
    # content as A to `ab_test_share` percent of the audience; the winner goes to the rest.
    ab_test_share = models.PositiveSmallIntegerField(
        "A/B test share",
        null=True,
        blank=True,
        validators=[
            MinValueValidator(AB_SHARE_MIN, message=AB_SHARE_MESSAGE),
            MaxValueValidator(AB_SHARE_MAX, message=AB_SHARE_MESSAGE),
        ],
        help_text="Percent of the audience that gets the test (10 to 50), split evenly between "
        "the variants. Leave empty to send one version to everyone.",
    )
    ab_wait_hours = models.PositiveSmallIntegerField(
        "A/B test wait",
        default=4,
        validators=[
            MinValueValidator(AB_WAIT_MIN_HOURS, message=AB_WAIT_MESSAGE),
            MaxValueValidator(AB_WAIT_MAX_HOURS, message=AB_WAIT_MESSAGE),
        ],
        help_text="Hours from the start of the send until the winner is chosen (1 to 48).",
    )
    ab_metric = models.CharField(
        "A/B test metric", max_length=12, choices=ABMetric.choices, default=ABMetric.SIGNATURES
    )
    ab_confidence = models.DecimalField(
        "A/B test confidence",
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.95"),
        choices=[(Decimal("0.90"), "90%"), (Decimal("0.95"), "95%"), (Decimal("0.99"), "99%")],
        help_text="How sure the two-proportion test must be that the winner is better.",
    )
    ab_min_deliveries = models.PositiveIntegerField(
        "A/B test minimum",
        default=100,
        validators=[MinValueValidator(1, message="At least one message per variant.")],
        help_text="Messages sent per variant before any variant can win.",
    )
    ab_without_winner = models.CharField(
        "A/B test without a clear winner",
        max_length=12,
        choices=ABWithoutWinner.choices,
        default=ABWithoutWinner.SEND_A,
    )
    # What the test came to (mailing_ab_decide): the winning label, when and by whom, and the
    # figures the decision rested on, as the report and the audit log show them.
    ab_status = models.CharField(
        max_length=16, choices=ABStatus.choices, blank=True, default="", editable=False
    )
    ab_winner = models.CharField(max_length=1, blank=True, editable=False)
    ab_decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    ab_decision = models.JSONField(default=dict, blank=True, editable=False)

    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    # Why the mailing is in its status when the system put it there (e.g. an automatic pause).
    status_reason = models.CharField(max_length=500, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Set once the audience is frozen into deliveries; until then the mailing cannot be done.
    audience_snapshot_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The last time a worker claimed a batch; the sweep re-queues a send that went quiet.
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # Who asked for the send that awaits approval: they may not approve it themselves.
    send_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # What changes a mailing's state is gated by these, not by the change permission alone.
        permissions = [
            ("send_mailing", "Can send, schedule and unschedule a mailing"),
            ("approve_mailing", "Can approve another campaigner's large send"),
            ("control_mailing", "Can pause, resume and cancel a mailing"),
            ("test_send_mailing", "Can send test copies of a mailing"),
            # Shows a supporter's name, address and personal links; also needs
            # supporters.view_supporter (mailings/admin_views/preview.py).
            (
                "preview_as_supporter",
                "Can preview and test-send a mailing as a real supporter",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def status_phrase(self) -> str:
        """The status as a refusal names it: "“Appeal” is already being sent: …"."""
        return _MAILING_STATUS_PHRASES[self.status]


_MAILING_STATUS_PHRASES = {
    Mailing.Status.DRAFT: "is a draft",
    Mailing.Status.AWAITING_APPROVAL: "is awaiting approval",
    Mailing.Status.SCHEDULED: "is scheduled already",
    Mailing.Status.SENDING: "is already being sent",
    Mailing.Status.WAITING_FOR_WINNER: "has sent its A/B test and waits for the winner",
    Mailing.Status.PAUSED: "is paused part-way through its send",
    Mailing.Status.SENT: "has been sent already",
    Mailing.Status.CANCELLED: "was cancelled",
}


class MailingVersion(models.Model):
    """The appeal in one language: each supporter gets the version in their language, if any.

    A supporter whose language has no version gets the mailing's own (default) content. The
    ledger records which version each supporter got (Delivery.version_language).
    """

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="versions")
    language = models.CharField(max_length=8, choices=Language.choices)
    subject = models.CharField(max_length=250)
    preheader = models.CharField(max_length=250, blank=True)
    html_body = models.TextField()
    text_body = models.TextField(
        blank=True, help_text="Leave empty to send the text made from the HTML."
    )

    class Meta:
        ordering = ["language"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailing", "language"], name="mailing_version_language_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailing} ({self.get_language_display()})"


class MailingVariant(models.Model):
    """Variant B, C or D of an A/B test: what it changes from the mailing's own content (A).

    One row per variant and language version: `language` "" changes the default content, a
    language code that version. A blank field changes nothing; the sender's name is the
    variant's own in every language unless a version's row names another.
    """

    class Label(models.TextChoices):
        B = "B", "B"
        C = "C", "C"
        D = "D", "D"

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=1, choices=Label.choices)
    language = models.CharField(
        max_length=8,
        choices=Language.choices,
        blank=True,
        help_text="Leave empty for the default content; pick a language for its version.",
    )
    subject = models.CharField(max_length=250, blank=True)
    preheader = models.CharField(max_length=250, blank=True)
    from_name = models.CharField("sender name", max_length=100, blank=True)

    class Meta:
        ordering = ["label", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailing", "label", "language"], name="mailing_variant_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailing} variant {self.label}"


class MailingAuditEntry(models.Model):
    """Who did what to a mailing, when, and how many it would reach at that moment.

    Written by the mailing services alone; names are copied, so the record outlives the user
    and the mailing it speaks of.
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        EDITED = "edited", "Edited"
        TEST_SENT = "test_sent", "Test copies sent"
        SENT = "sent", "Sent"
        SEND_REQUESTED = "send_requested", "Send asked for, awaiting approval"
        SCHEDULED = "scheduled", "Scheduled"
        UNSCHEDULED = "unscheduled", "Unscheduled"
        APPROVED = "approved", "Approved"
        PAUSED = "paused", "Paused"
        RESUMED = "resumed", "Resumed"
        CANCELLED = "cancelled", "Cancelled"
        AB_DECIDED = "ab_decided", "A/B test decided"
        AB_HELD = "ab_held", "A/B test winner held back"
        AB_STOPPED = "ab_stopped", "A/B test stopped"
        # Its silent recipients suppressed, once its grace was over (mailings/sending/sunset.py).
        SUNSET = "sunset", "Sunset: silent recipients suppressed"

    mailing = models.ForeignKey(
        Mailing, on_delete=models.SET_NULL, null=True, related_name="audit_entries"
    )
    mailing_name = models.CharField(max_length=200)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    # The audience's size when it happened, where that matters (a send, a schedule, …).
    recipient_count = models.PositiveIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "mailing audit entry"
        verbose_name_plural = "mailing audit log"

    def __str__(self) -> str:
        actor = self.actor_name or "Rally"
        return f"{actor}: {self.get_action_display().lower()} “{self.mailing_name}”"
