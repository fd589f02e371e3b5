"""Faster ways to hand a batch to an ESP than anymail's or Django's one-message-per-call path.

Send many personalised messages in one ESP request, where the ESP's API allows it.

anymail sends one message per API call. Some ESPs accept a list of *different* messages in one
call (Postmark's /email/batch takes 500), which saves an HTTP round trip and most of the client
work per message. A BatchSender builds each message's payload with the ESP's own anymail
backend, so everything anymail does to a message still happens; only the HTTP call is shared.
One module per provider, as anymail does with anymail/backends/.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from anymail.message import AnymailMessage

from mailings.send_errors import SendError


@dataclass(frozen=True)
class MessageResult:
    """What the ESP said about one message of a batch: its id, or why it refused it."""

    message_id: str = ""
    failure: SendError | None = None


class BatchSender(ABC):
    #: The most messages the ESP takes in one request.
    max_batch: int

    def __init__(self, connection):
        self.connection = connection

    @abstractmethod
    def send(self, messages: list[AnymailMessage]) -> list[MessageResult]:
        """Send the messages in one request; return one result per message, in order.

        Raise (as anymail would) when the request as a whole failed: throttled, refused, or
        the connection broke. `classify_send_error` then says whether it can be retried.
        """


def batch_sender_for(connection) -> BatchSender | None:
    """Return the batch sender for a connection's ESP, or None to send message by message."""
    from anymail.backends.postmark import EmailBackend as PostmarkBackend
    from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

    from .postmark import PostmarkBatchSender
    from .smtp import SMTPSender

    if isinstance(connection, PostmarkBackend) and not connection.use_bulk_api:
        return PostmarkBatchSender(connection)
    # Exactly Django's SMTP backend: a subclass may sign or rewrite messages in ways that the
    # lean writer would skip.
    if type(connection) is SMTPBackend:
        return SMTPSender(connection)
    return None
