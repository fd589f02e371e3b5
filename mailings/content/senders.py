"""The senders a mailing may come from: RALLY_SENDERS, and the domains in RALLY_SENDER_DOMAINS.

Receivers accept a bulk message only when its From domain is the domain that signed it (DMARC
alignment); a From address on any other domain sends an appeal to spam, or nowhere. So a
campaigner chooses a sender from the list an administrator set up with the ESP, and a mailing
whose From domain is not on the list cannot be saved.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.validators import validate_email


@dataclass(frozen=True)
class Sender:
    name: str
    email: str
    reply_to: str = ""

    @property
    def key(self) -> str:
        """Name this sender in the mailing form: stable while the list changes around it."""
        return f"{self.name} <{self.email}>"

    @property
    def label(self) -> str:
        return f"{self.key}, replies to {self.reply_to}" if self.reply_to else self.key


def allowed_senders() -> list[Sender]:
    """Return the senders of RALLY_SENDERS, in their order (the first is the default)."""
    return [
        Sender(
            name=str(entry.get("name", "")).strip(),
            email=str(entry.get("email", "")).strip(),
            reply_to=str(entry.get("reply_to") or "").strip(),
        )
        for entry in settings.RALLY_SENDERS
        if isinstance(entry, dict)
    ]


def sender_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def sender_validate(*, email: str) -> None:
    """Raise ValidationError unless `email` is on one of RALLY_SENDER_DOMAINS."""
    domain = sender_domain(email)
    if domain not in settings.RALLY_SENDER_DOMAINS:
        raise ValidationError(
            "%(email)s is not on a sending domain of this organisation (%(domains)s): "
            "receivers would fail its DMARC check. Choose one of the senders offered.",
            code="sender_domain",
            params={"email": email, "domains": ", ".join(settings.RALLY_SENDER_DOMAINS)},
        )


@checks.register()
def check_senders(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Report a malformed RALLY_SENDERS, or a sender outside RALLY_SENDER_DOMAINS."""
    errors = []
    if not isinstance(settings.RALLY_SENDERS, list) or not settings.RALLY_SENDERS:
        return [checks.Error("RALLY_SENDERS must be a non-empty JSON list.", id="rally.E001")]
    for position, entry in enumerate(settings.RALLY_SENDERS):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("email"):
            errors.append(
                checks.Error(
                    f"RALLY_SENDERS[{position}] needs a name and an email.", id="rally.E002"
                )
            )
    keys = set()
    for sender in allowed_senders():
        for address in filter(None, (sender.email, sender.reply_to)):
            try:
                validate_email(address)
            except ValidationError:
                message = f"{address!r} in RALLY_SENDERS is not an address."
                errors.append(checks.Error(message, id="rally.E005"))
        if sender.email and sender_domain(sender.email) not in settings.RALLY_SENDER_DOMAINS:
            errors.append(
                checks.Error(
                    f"{sender.email} is in RALLY_SENDERS but its domain is not in "
                    "RALLY_SENDER_DOMAINS: no mailing could be saved with it.",
                    id="rally.E003",
                )
            )
        if sender.key in keys:
            errors.append(checks.Error(f"{sender.key} is twice in RALLY_SENDERS.", id="rally.E004"))
        keys.add(sender.key)
    return errors
