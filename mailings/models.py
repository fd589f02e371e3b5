from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from campaigns.models import Campaign, Petition
from supporters.models import Language, Supporter, Tag

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


class EspStatus(models.TextChoices):
    """What the ESP said of a delivery afterwards, by webhook (Delivery.esp_status)."""

    DELIVERED = "delivered", "Delivered"
    SOFT_BOUNCED = "soft_bounced", "Soft bounce"
    BOUNCED = "bounced", "Hard bounce"
    COMPLAINED = "complained", "Complaint"
    # The ESP refused it without trying: the address is on the ESP's own suppression list.
    REJECTED = "rejected", "Rejected by the ESP"


# The hard outcomes: a hard bounce and a complaint. Each takes the supporter off the list
# (feedback/kinds.py suppresses on them, as on the ESP's refusal of a suppressed address), the
# breaker counts them against a sending mailing (sending/breaker.py), processing checks the
# breaker when a delivery reaches one, and the index below serves those counts.
HARD_ESP_STATUSES = (EspStatus.BOUNCED, EspStatus.COMPLAINED)


class Delivery(models.Model):
    """The ledger row for one supporter in one mailing: it is sent at most once.

    The unique constraint makes a second audience snapshot harmless; the status says what
    happened, so every supporter in the audience received the mailing or the ledger says why not.
    """

    EspStatus = EspStatus
    # The hard outcomes, as the ledger records them (HARD_ESP_STATUSES).
    HARD_ESP_STATUSES = HARD_ESP_STATUSES

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed by a worker"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (no longer subscribed)"
        CANCELLED = "cancelled", "Cancelled before sending"
        # A worker died after claiming it: the ESP may or may not have accepted the message.
        # It is reported, never re-sent blindly.
        UNKNOWN = "unknown", "Unknown (worker lost)"

    # No index of its own: the unique (mailing, supporter) index serves lookups by mailing. Every
    # index is one more write per row of a snapshot, which inserts a whole audience at once.
    mailing = models.ForeignKey(
        Mailing, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    supporter = models.ForeignKey(Supporter, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # The MailingVersion this supporter gets, by language; empty for the mailing's default.
    # Chosen when the audience is frozen, so the ledger says what each supporter was sent.
    version_language = models.CharField(max_length=8, blank=True)
    # The A/B variant this supporter was sent ("A" to "D"), chosen when the audience is frozen;
    # empty when the mailing tests nothing. A database default: the snapshot inserts in raw SQL.
    variant = models.CharField(max_length=1, blank=True, default="", db_default="")
    # Which worker claimed it and until when; the sweep recovers expired leases.
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    esp_message_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the ESP said afterwards, by webhook (mailings/feedback/): the latest of its events
    # that matters to the ledger. Database defaults, because the snapshot inserts rows in raw SQL
    # that names only the columns it fills.
    esp_status = models.CharField(
        max_length=16, choices=EspStatus.choices, blank=True, default="", db_default=""
    )
    esp_status_at = models.DateTimeField(null=True, blank=True)
    # First open (tracking pixel or ESP event; approximate) and first click of a tracked link.
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    # When the supporter left the list through this message's unsubscribe link or header (the
    # report's "unsubscribes caused", with complaints); unset if they were not subscribed then.
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["mailing", "supporter"], name="delivery_mailing_supporter_unique"
            ),
        ]
        indexes = [
            # Claiming takes the lowest pending ids of a mailing: with id in the index that is
            # an index range scan, not a sort of every pending row, which grows with the
            # audience (docs/performance.md, "Indexes").
            models.Index(fields=["mailing", "status", "id"], name="delivery_mailing_status_id"),
            # Webhooks that carry only the ESP's message id find the row by it. Rows not yet
            # sent have none, so a snapshot writes nothing to this index.
            models.Index(
                fields=["esp_message_id"],
                condition=~models.Q(esp_message_id=""),
                name="delivery_esp_message_id",
            ),
            # The progress page's sending rate counts a mailing's rows sent in the last minute
            # (selectors.mailing_progress); without this it reads every row of the mailing.
            # Only sent rows are in it, so a snapshot's inserts write nothing to it.
            models.Index(
                fields=["mailing", "sent_at"],
                condition=models.Q(status="sent"),
                name="delivery_mailing_sent_at",
            ),
            # The breaker counts a mailing's complaints and hard bounces after each of them
            # (mailings/sending/breaker.py). Only those rows are in it: few, and none
            # from a snapshot's inserts.
            models.Index(
                fields=["mailing", "esp_status", "sent_at"],
                condition=models.Q(esp_status__in=HARD_ESP_STATUSES),
                name="delivery_mailing_esp_trouble",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailing} → {self.supporter}"


class TrackingEvent(models.Model):
    """An ESP event (delivered, bounced, opened, …) received by webhook, stored once.

    The webhook stores it raw and queues it; the `tracking` queue processes it (matches its
    Delivery, updates the ledger, suppresses the supporter) and sets `processed_at`.
    """

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied to its delivery"
        # No delivery carries its metadata or message id: a test send, another system's mail,
        # or a forged event. Stored and reported, and nothing else happens.
        UNKNOWN_MESSAGE = "unknown_message", "No matching delivery"
        IGNORED = "ignored", "Nothing to do"

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    esp = models.CharField(max_length=50)
    # The ESP's own id for the event; with `esp` it deduplicates webhook retries. ESPs that
    # give none get a digest of the event's identifying fields (mailings/feedback/intake.py).
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=50, db_index=True)
    # anymail's reject_reason (bounced, spam, blocked, …), which tells a hard bounce from a soft.
    reject_reason = models.CharField(max_length=50, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    recipient = models.EmailField(blank=True)
    occurred_at = models.DateTimeField()
    description = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    # The metadata the message was sent with, as anymail recovered it from the event (each ESP
    # echoes it in its own way): Rally's delivery_id and mailing_id name the ledger row.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_id"], name="tracking_event_unique"),
        ]
        indexes = [
            # The sweep finds events whose task Redis lost; processed ones are not in it.
            models.Index(
                fields=["created_at"],
                condition=models.Q(processed_at__isnull=True),
                name="tracking_event_unprocessed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.recipient}"


class LinkClick(models.Model):
    """One click of a tracked link in a bulk message, through the signed redirect.

    `link_index` is the link's place in the mailing's body, the only way the token names a URL,
    so the redirect can never be pointed anywhere the mailing did not link to.
    """

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="clicks")
    supporter = models.ForeignKey(Supporter, on_delete=models.CASCADE, related_name="clicks")
    link_index = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["mailing", "link_index"], name="link_click_mailing")]

    def __str__(self) -> str:
        return f"{self.mailing} link {self.link_index}"


class Report(Mailing):
    """A mailing seen as its report: the admin's list of reports and the compare page.

    Its admin (mailings/admin_views/report.py) asks for mailings.view_mailing, so it needs no
    permissions of its own.
    """

    class Meta:
        proxy = True
        default_permissions = ()


class OutboxMessage(models.Model):
    """A message "sent" by the local outbox email backend, for development without an ESP."""

    to = models.CharField(max_length=1000)
    from_email = models.CharField(max_length=300)
    subject = models.CharField(max_length=1000)
    headers = models.JSONField(default=dict)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to}"


# A mailing's report, counted as events arrive: a report reads these, never the ledger (a
# mailing of a million deliveries has a few hundred rows here). Every writer of the ledger adds
# to them in its own transaction (mailings/report_counts.py), so a batch rolled back and run
# again counts once. What is counted, in the order a report shows it: each is a column of
# ReportHour and ReportBreakdown, and means what mailings/report_figures.py says.
REPORT_FIGURES = (
    "sent",
    "delivered",
    "hard_bounces",
    "soft_bounces",
    "complaints",
    "rejected",
    "unsubscribes",
    "opens",
    "unique_clicks",
    "clicks",
    "signatures",
)


class ReportCounts(models.Model):
    """A set of the report's figures. Changes come as amounts added, which may be negative.

    Database defaults, because the writers upsert in SQL naming only the columns they fill.
    """

    sent = models.IntegerField(default=0, db_default=0)
    delivered = models.IntegerField(default=0, db_default=0)
    hard_bounces = models.IntegerField(default=0, db_default=0)
    soft_bounces = models.IntegerField(default=0, db_default=0)
    complaints = models.IntegerField(default=0, db_default=0)
    rejected = models.IntegerField(default=0, db_default=0)
    unsubscribes = models.IntegerField(default=0, db_default=0)
    opens = models.IntegerField(default=0, db_default=0)
    unique_clicks = models.IntegerField(default=0, db_default=0)
    clicks = models.IntegerField(default=0, db_default=0)
    signatures = models.IntegerField(default=0, db_default=0)

    class Meta:
        abstract = True


class ReportHour(ReportCounts):
    """What happened to a mailing within one hour (UTC, from the hour's start): its time series.

    A change is counted in the hour it happened, as the ledger dates it (an ESP's event time,
    a click's, a signature's), never later than when it was recorded.
    """

    # No index of its own: the unique (mailing, hour) index serves lookups by mailing.
    mailing = models.ForeignKey(
        "mailings.Mailing", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailing", "hour"], name="report_hour_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.mailing_id} at {self.hour:%Y-%m-%d %H:00}"


class ReportBreakdown(ReportCounts):
    """A mailing's figures for one language version, variant, mailbox domain or link, all time.

    Not by hour: a report shows these as totals, and a row per hour of each of a list's
    thousands of mailbox domains would make a report read as many rows as there were events.
    """

    class Dimension(models.TextChoices):
        # Delivery.version_language: "" is the mailing's own (default) content.
        LANGUAGE = "language", "Language version"
        # Delivery.variant, "A" to "D"; deliveries of a mailing that tests nothing are not here.
        VARIANT = "variant", "Variant"
        # The part of the recipient's address after the @, lower-cased.
        DOMAIN = "domain", "Mailbox domain"
        # The link's index in the mailing's link list: clicks and unique clicks only.
        LINK = "link", "Link"

    mailing = models.ForeignKey(
        "mailings.Mailing", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    dimension = models.CharField(max_length=16, choices=Dimension.choices)
    key = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mailing", "dimension", "key"], name="report_breakdown_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailing_id} {self.dimension} {self.key!r}"
