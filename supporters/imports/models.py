"""The import of a file and the rows it rejected; re-exported by supporters/models.py."""

from django.conf import settings
from django.db import models


class SupporterImport(models.Model):
    """One CSV import: what was asked, how far it got, and what it did.

    The file is kept in the default storage (MEDIA_ROOT) only until the import has run; the
    worker reads it from there, so web and worker need the same storage (a shared volume in
    docker-compose).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Uploaded, columns to confirm"
        QUEUED = "queued", "Queued"
        READING = "reading", "Reading the file"
        MERGING = "merging", "Merging into the list"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    file = models.FileField(upload_to="imports/", blank=True)
    original_name = models.CharField(max_length=255)
    tag_names = models.JSONField(default=list)
    consent_source = models.CharField(max_length=500)
    consent_wording = models.TextField()
    # Empty: guessed from the bytes (supporters/imports/reading.py).
    encoding = models.CharField(max_length=20, blank=True)
    # The file's header as read, and for each of its columns the supporter field it fills, or
    # "" to ignore it.
    headers = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=list, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    encoding_used = models.CharField(max_length=100, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    bytes_total = models.PositiveBigIntegerField(default=0)
    bytes_done = models.PositiveBigIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(null=True, blank=True)
    created = models.PositiveIntegerField(null=True, blank=True)
    merged = models.PositiveIntegerField(null=True, blank=True)
    rejected = models.PositiveIntegerField(null=True, blank=True)
    # The rest of the outcome: duplicates within the file, existing supporters not subscribed…
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("import_supporters", "Can import supporters from a file")]

    def __str__(self) -> str:
        return f"Import of {self.original_name}"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return round((self.finished_at - self.started_at).total_seconds(), 2)
        return None


class SupporterImportRejection(models.Model):
    """A row an import did not take, with why, for the campaigner's report.

    `raw` holds the row's cells as read (JSON), so it can hold an email address: erasing a
    supporter must remove their rows here too (privacy/scrubbers.py). Rows rejected because
    the address was erased keep no cells at all.
    """

    supporter_import = models.ForeignKey(
        SupporterImport, on_delete=models.CASCADE, related_name="rejections"
    )
    line = models.PositiveIntegerField()
    reason = models.CharField(max_length=200)
    raw = models.TextField(blank=True)

    class Meta:
        ordering = ["supporter_import", "line"]
        indexes = [models.Index(fields=["supporter_import", "line"], name="import_rejection_line")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class SupporterImportPart(models.Model):
    """One lane's share of an import, written in the same transaction as that share's people.

    An import is merged in lanes, each its own database session, splitting the people by their
    address (supporters/imports/lanes.py). The lanes commit one after another once all have
    passed every check; a crash between two commits leaves the first lanes' parts here, and
    the run that Celery delivers again merges only the lanes without one.
    """

    supporter_import = models.ForeignKey(
        SupporterImport, on_delete=models.CASCADE, related_name="parts"
    )
    lane = models.PositiveSmallIntegerField()
    # How many lanes the run split the file into: a resumed run must split it the same way.
    lanes = models.PositiveSmallIntegerField()
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["supporter_import", "lane"]
        constraints = [
            models.UniqueConstraint(fields=["supporter_import", "lane"], name="import_part_lane")
        ]

    def __str__(self) -> str:
        return f"lane {self.lane + 1} of {self.lanes}"
