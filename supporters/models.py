import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django_countries.fields import CountryField


class LowercaseEmailField(models.EmailField):
    """Store and look up email addresses trimmed and lower-cased.

    Normalising in `get_prep_value` covers every write path (services, admin, bulk_create) and
    every lookup, so `filter(email="Ann@X.org")` finds `ann@x.org`. The unique constraint on
    `Lower("email")` in Supporter.Meta enforces the same rule in the database itself.
    """

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if isinstance(value, str):
            return value.strip().lower()
        return value


class RandomUUID(models.Func):
    """A fresh random UUID made by the database itself, on PostgreSQL and on SQLite.

    The default of Supporter.uuid in the database, for the rows that raw SQL inserts (the
    PostgreSQL sign path, campaigns/signing/sign_batch.sql, and the import's merge), which pass
    no value. Django's own RandomUUID is PostgreSQL's alone; SQLite has no UUID function, but
    Django stores a UUIDField there as 32 hexadecimal digits, which 16 random bytes give.
    """

    output_field = models.UUIDField()

    def as_sql(self, compiler, connection, **extra_context):
        # Called on the remaining backends: an error here beats a default that silently repeats.
        raise NotImplementedError(f"RandomUUID has no SQL for {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra_context):
        return "gen_random_uuid()", []

    def as_sqlite(self, compiler, connection, **extra_context):
        return "lower(hex(randomblob(16)))", []


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    RUSSIAN = "ru", "Русский"


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# Who may be mailed: subscribed, and with mail not paused. Unsubscribed, suppressed (after a
# hard bounce, a complaint or the ESP's own suppression list) and erased supporters each have a
# status of their own, so "subscribed" leaves them all out. A pause that is over is cleared by
# supporter_pauses_end, so the audience asks for no pause at all and reads the index of the
# mailable alone; a claim, which meets rows frozen earlier, asks Supporter.is_mailable. The
# audience count, the snapshot, the claim and the index below all take the rule from here.
MAILABLE = models.Q(status="subscribed", paused_until__isnull=True)


class Supporter(models.Model):
    class Status(models.TextChoices):
        SUBSCRIBED = "subscribed", "Subscribed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        # Personal data removed on request (GDPR art. 17); the row stays as an anonymous count.
        ERASED = "erased", "Erased"
        # Dormant, sent a re-permission mailing, and still silent (supporters/engagement.py):
        # off the list until a fresh signature of their own brings them back.
        SUNSET = "sunset", "Sunset: stopped engaging"

    # The public id, in the OSDI API's urls and identifiers (`rally:<uuid>`) and in webhooks:
    # the row id stays internal. A database default too: raw SQL inserts supporters (RandomUUID).
    uuid = models.UUIDField(
        unique=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    email = LowercaseEmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    country = CountryField(blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.ENGLISH)
    # Indexed only where it is not "subscribed" (supporter_left below): most of a list is
    # subscribed, and the mailable are found by supporter_mailable_audience.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBSCRIBED)
    # Where the supporter first came from: a petition slug, an import, a share link ref.
    source = models.CharField(max_length=100, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="supporters")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    # Set when a hard bounce, complaint or the ESP's own suppression took them off the list,
    # with the ESP's words, so a campaigner can see why someone is no longer mailed.
    suppressed_at = models.DateTimeField(null=True, blank=True)
    # A database default too: the PostgreSQL sign path inserts supporters in raw SQL.
    suppression_reason = models.CharField(max_length=500, blank=True, default="", db_default="")
    # Mail paused by the supporter on the preference page; they stay subscribed. Set back to
    # None once the pause is over (supporter_pauses_end): audiences take only those with None.
    paused_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Emails are stored lower-case (LowercaseEmailField), and the database holds every
            # row to it; so a plain unique index is case-insensitive uniqueness, and it serves
            # every `email=` lookup. (A unique index on Lower("email") did the first but not
            # the second: each returning signer cost a scan of the whole table.)
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="supporter_email_lowercase"
            ),
            models.UniqueConstraint(fields=["email"], name="supporter_email_unique"),
        ]
        indexes = [
            # The mailing form counts an audience by language each time the campaigner pauses
            # in its fields. This index holds every column of the mailable (subscribed, mail
            # not paused) that the count reads, in id order: PostgreSQL counts from it alone,
            # without reading the much larger table, and merges it with a condition's
            # signatures or tags, which their own indexes give in supporter order. Country
            # costs no space: the id's alignment pads each entry anyway. A paused supporter
            # leaves the index, so the count has nothing to check per entry; a pause that
            # ends is cleared (supporter_pauses_end) and brings them back (docs/performance.md,
            # "Audience counts").
            models.Index(
                fields=["id", "language", "country"],
                condition=MAILABLE,
                name="supporter_mailable_audience",
            ),
            # Those who left, bounced, complained or were erased: the admin's filters and the
            # exports find them here. A new or signing supporter, subscribed, writes no entry
            # (a plain index on status cost each one two, with its LIKE twin; see
            # docs/performance.md, "Supporter import").
            models.Index(
                fields=["status"],
                condition=~models.Q(status="subscribed"),
                name="supporter_left",
            ),
            # The pauses, few at any time: supporter_pauses_end finds those that are over here.
            models.Index(
                fields=["paused_until"],
                condition=models.Q(paused_until__isnull=False),
                name="supporter_paused",
            ),
        ]
        # Taking personal data out, or removing it, is a permission of its own for each way of
        # doing it, apart from viewing and changing supporters in the admin.
        permissions = [
            ("export_supporters", "Can export supporters as CSV"),
            ("export_person", "Can download one supporter's personal data"),
            ("erase_supporter", "Can erase a supporter's personal data"),
        ]

    def __str__(self) -> str:
        return self.email

    @classmethod
    def is_mailable(cls, *, status: str, paused_until, at) -> bool:
        """Say whether a supporter with this status and pause may be mailed at `at` (MAILABLE)."""
        return status == cls.Status.SUBSCRIBED and (paused_until is None or paused_until <= at)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Engagement(models.Model):
    """What a supporter last did with Rally's mail: kept up to date as it happens, never scanned.

    One row per supporter who has been mailed or has engaged; none for the others (a new signer
    is as engaged as can be, an imported supporter never mailed is not yet judged). The workers
    write it: the send queue when it records a batch sent, the feedback pipeline when an open or
    a click arrives, signing when a signature is made. The tiers (active, lapsing, dormant)
    are read from it by supporters/engagement.py; the thresholds are settings.

    A table of its own rather than columns of Supporter: every send updates a row per
    recipient, and here that touches one small table with one index, not the supporter table
    with its email and audience indexes.
    """

    supporter = models.OneToOneField(
        Supporter, on_delete=models.CASCADE, primary_key=True, related_name="engagement"
    )
    last_mailed_at = models.DateTimeField(null=True, blank=True)
    # Approximate: an open is a tracking pixel or the ESP's open event, and Apple Mail's
    # privacy protection opens every message it receives.
    last_opened_at = models.DateTimeField(null=True, blank=True)
    last_clicked_at = models.DateTimeField(null=True, blank=True)
    # Last signature (the supporter acted).
    last_acted_at = models.DateTimeField(null=True, blank=True)
    # The latest of opened, clicked and acted; when the row is made, the supporter's joining
    # (Supporter.created_at), which counts as engaging. The tiers read this column alone.
    last_engaged_at = models.DateTimeField()
    # Bulk mailings sent to them since they last engaged; back to 0 when they engage.
    mailings_since_engaged = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        indexes = [
            models.Index(fields=["last_engaged_at"], name="engagement_last_engaged"),
            # The active and lapsing tiers join every supporter to their row in id order
            # (supporters/engagement.py); with the date beside the id the join reads this index
            # alone, never the rows. mailings_since_engaged stays out: every send updates it,
            # and an index on it would make each of those updates write every index.
            models.Index(
                fields=["supporter"],
                include=["last_engaged_at"],
                name="engagement_by_supporter",
            ),
        ]

    def __str__(self) -> str:
        return f"Engagement of supporter {self.supporter_id}"


class ConsentRecord(models.Model):
    """Proof of consent: the exact wording a supporter agreed to, when and where."""

    supporter = models.ForeignKey(
        Supporter, on_delete=models.CASCADE, related_name="consent_records"
    )
    wording = models.TextField()
    # The page the consent was given on, e.g. the petition URL.
    source_url = models.CharField(max_length=500, blank=True)
    # The IP with its host part zeroed (IPv4 /24, IPv6 /48): enough to spot abuse, not a person.
    ip_truncated = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Consent of {self.supporter} at {self.created_at:%Y-%m-%d %H:%M}"


class SuppressedEmail(models.Model):
    """An address that may never be mailed or imported again: only its keyed hash is kept.

    Written when a supporter is erased (supporter_erase in privacy/services.py). The hash is an
    HMAC of the normalised email under RALLY_SUPPRESSION_HASH_KEY, so the list names nobody to
    anyone without the key, yet an import can still recognise the address. A fresh signature of
    their own makes a new supporter; this entry never does.
    """

    class Reason(models.TextChoices):
        ERASED = "erased", "Erased on request"

    email_hash = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.ERASED)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_reason_display()} {self.email_hash[:12]}…"


class SupporterAuditEntry(models.Model):
    """Who took personal data out of Rally, or removed it: exports, imports, erasures.

    Kept apart from MailingAuditEntry: these concern the list, not one mailing. The actor's
    name is copied so the record outlives the account; `detail` never holds a supporter's email.
    """

    class Action(models.TextChoices):
        EXPORTED_SUPPORTERS = "export_supporters", "Exported supporters"
        EXPORTED_SIGNATURES = "export_signatures", "Exported signatures"
        EXPORTED_PERSON = "export_person", "Exported one supporter's data"
        ERASED = "erase", "Erased a supporter"
        IMPORTED = "import", "Imported supporters"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "supporter audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name or 'Rally'}: {self.get_action_display().lower()}"


# The import's and the segments' models live beside their code; Django finds models through
# this module.
from .imports.models import (  # noqa: E402, F401
    SupporterImport,
    SupporterImportPart,
    SupporterImportRejection,
)
from .segments.models import Segment, SegmentCondition  # noqa: E402, F401
