import hashlib

from django.conf import settings
from django.db import models


def token_digest(secret: str) -> str:
    """Return the stored form of an API token: its SHA-256, hex.

    A plain hash is enough here, unlike for passwords: tokens are long random strings made by
    Rally (api_token_create), so there is nothing to guess from a leaked digest, and the lookup
    of a request's token stays one indexed equality.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """A key to the OSDI API, made in the admin or by `manage.py api_token_create`.

    Only the digest of the secret is kept; the secret is shown once, when the token is made.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read: GET only"
        WRITE = "write", "Write: everything"
        # For a website's forms: add people and record signatures, read nothing.
        HELPERS = "helpers", "Signup helpers only"

    name = models.CharField(max_length=100, unique=True)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    # The secret's first characters, so an administrator can tell which token a script holds.
    prefix = models.CharField(max_length=12, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Updated at most once a minute per process (api/auth.py), not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"
        permissions = [("revoke_apitoken", "Can revoke API tokens")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ApiAuditEntry(models.Model):
    """One request that could write, made with a token of the write or helpers scope.

    The token's name is copied so the record outlives the token. `written` names what the
    request created or changed by public ids (`person:<uuid>`, `tag:<id>`), never an email.
    """

    token = models.ForeignKey(
        ApiToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    token_name = models.CharField(max_length=100)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    written = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API audit entry"
        verbose_name_plural = "API audit entries"

    def __str__(self) -> str:
        return f"{self.token_name} {self.method} {self.path} → {self.status}"
