import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from api.models import ApiToken, token_digest

# Characters of the secret kept in clear on the row, to tell tokens apart in the admin.
PREFIX_LENGTH = 8


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: the row, and the secret, which exists nowhere else."""

    token: ApiToken
    secret: str


def api_token_create(*, name: str, scope: str, created_by=None) -> IssuedToken:
    """Make a token; the secret in the result is shown once and never stored."""
    if scope not in ApiToken.Scope.values:
        raise ValueError(
            f"unknown scope {scope!r}: choose one of {', '.join(ApiToken.Scope.values)}"
        )
    # 32 random bytes, url-safe: 43 characters that survive any header or shell.
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        scope=scope,
        digest=token_digest(secret),
        prefix=secret[:PREFIX_LENGTH],
        created_by=created_by,
    )
    return IssuedToken(token=token, secret=secret)


def api_token_revoke(*, token_id: int) -> bool:
    """Revoke a token; say whether this call did it (a second call changes nothing).

    Processes that cached the token stop accepting it within api.auth.TOKEN_CACHE_SECONDS.
    """
    with transaction.atomic():
        return bool(
            ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
        )
