"""Build the messages the fake ESP tests send, and name the backend that sends them."""

from __future__ import annotations

from django.core.mail import EmailMultiAlternatives

POSTMARK_BACKEND = "anymail.backends.postmark.EmailBackend"
SENDER = "Rally <rally@example.org>"


def make_message(to: str | list[str], subject: str = "Hello", **kwargs: object):
    """Build a message with a plain and an HTML body."""
    message = EmailMultiAlternatives(
        subject,
        "Plain body",
        SENDER,
        [to] if isinstance(to, str) else to,
        **kwargs,
    )
    message.attach_alternative("<p>HTML body</p>", "text/html")
    return message
