"""Which batch sender serves a connection: the one place that knows every provider module."""

from anymail.backends.postmark import EmailBackend as PostmarkBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from mailings.sending.esp.base import BatchSender
from mailings.sending.esp.postmark import PostmarkBatchSender
from mailings.sending.esp.smtp import SMTPSender


def batch_sender_for(connection) -> BatchSender | None:
    """Return the batch sender for a connection's ESP, or None to send message by message."""
    if isinstance(connection, PostmarkBackend) and not connection.use_bulk_api:
        return PostmarkBatchSender(connection)
    # Exactly Django's SMTP backend: a subclass may sign or rewrite messages in ways that the
    # lean writer would skip.
    if type(connection) is SMTPBackend:
        return SMTPSender(connection)
    return None
