"""The delivery ledger and what the ESP and readers say of it: deliveries, events, clicks."""

from django.db import models

from mailings.models.mailing import Mailing
from supporters.models import Supporter


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
        # Never sent, for the reason in `skip_reason`.
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled before sending"
        # A worker died after claiming it, or the ESP's answer was lost: the ESP may or may not
        # have accepted the message. Never re-sent blindly: the reconciler asks the ESP
        # (mailings/sending/reconcile/), and where no ESP can be asked it stays so, reported.
        UNKNOWN = "unknown", "Unknown (worker lost)"

    class SkipReason(models.TextChoices):
        # Unsubscribed, suppressed or paused their mail after the snapshot (sending/batches.py).
        NOT_MAILABLE = "not_mailable", "No longer subscribed"
        # Over the frequency cap when claimed (sending/frequency_cap.py).
        FREQUENCY_CAP_DAY = "frequency_cap_day", "Over the daily frequency cap"
        FREQUENCY_CAP_WEEK = "frequency_cap_week", "Over the weekly frequency cap"

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
    # Why a SKIPPED delivery was not sent: no longer mailable, over the frequency cap, dormant
    # (mailings/sending/). A database default: the snapshot inserts rows in raw SQL.
    skip_reason = models.CharField(
        max_length=32, choices=SkipReason.choices, blank=True, default="", db_default=""
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The reconciler's record (mailings/sending/reconcile/): how often it asked the ESP about
    # this unknown delivery and got no answer (it stops asking at RALLY_RECONCILE_MAX_ATTEMPTS),
    # and when it put the delivery back to be sent again, the ESP having proved it never
    # accepted it. Set once, by a conditional UPDATE: a delivery is re-sent at most once.
    # Database defaults, because the snapshot inserts rows in raw SQL.
    reconcile_attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    resent_at = models.DateTimeField(null=True, blank=True)
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
            # The reconciler finds the unknown deliveries ready to ask about, across mailings,
            # by when they last changed. Only unknown rows are in it: few, none from a snapshot.
            models.Index(
                fields=["updated_at"],
                condition=models.Q(status="unknown"),
                name="delivery_unknown",
            ),
            # And the deliveries it put back to be sent again that wait for it to send them
            # (a mailing that finished sends no batches). Only re-sent rows are in it: few.
            models.Index(
                fields=["mailing"],
                condition=models.Q(status="pending", resent_at__isnull=False),
                name="delivery_resend_pending",
            ),
            # A segment's "received / opened / clicked any mailing within N days"
            # (mailings/segments.py) reads, for each, the supporters of the entries since a
            # moment: a range of one of these, without the rows. Each holds only the rows that
            # have that moment, written once when a row is sent, first opened or first
            # clicked; a snapshot's inserts write nothing to them.
            models.Index(
                fields=["sent_at", "supporter"],
                condition=models.Q(status="sent"),
                name="delivery_sent_at_supporter",
            ),
            models.Index(
                fields=["opened_at", "supporter"],
                condition=models.Q(opened_at__isnull=False),
                name="delivery_opened_at_supporter",
            ),
            models.Index(
                fields=["clicked_at", "supporter"],
                condition=models.Q(clicked_at__isnull=False),
                name="delivery_clicked_at_supporter",
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


class DeliveryCount(models.Model):
    """An amount of a mailing's deliveries in one status (and skip reason): the ledger, counted.

    Kept by database triggers on Delivery (mailings/delivery_counts.py, migration 0025), in the
    transaction of every statement that inserts, updates or deletes deliveries, so no writer
    can forget them and they hold what the ledger holds in every snapshot a reader takes. On
    PostgreSQL a statement adds rows of amounts (negative too) and never updates one, so
    writers take no lock here and wait for nobody; the rows of a mailing are summed by whoever
    reads them and now and then folded into one per key. On SQLite, one writer at a time, each
    key has one row, updated in place. The progress page reads these instead of counting a
    mailing's deliveries (docs/performance.md, "Report counters").
    """

    # No database constraint: the triggers delete a mailing's rows with it, after its
    # deliveries' deletion has added to them (Django deletes the deliveries first).
    mailing = models.ForeignKey(
        Mailing, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Delivery.Status.choices)
    skip_reason = models.CharField(max_length=32, blank=True)
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.mailing_id} {self.status} {self.skip_reason}: {self.n}"


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


class OutboxMessage(models.Model):
    """A message "sent" by the local outbox email backend, for development without an ESP."""

    to = models.CharField(max_length=1000)
    from_email = models.CharField(max_length=300)
    subject = models.CharField(max_length=1000)
    headers = models.JSONField(default=dict)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    # The metadata Rally attached (delivery_id, mailing_id), as an ESP keeps it: the reconciler
    # asks this table, as it asks an ESP, whether an unknown delivery was sent.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to}"
