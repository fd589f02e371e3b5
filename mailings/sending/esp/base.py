"""Faster ways to hand a batch to an ESP than anymail's or Django's one-message-per-call path.

Send many personalised messages in one ESP request, where the ESP's API allows it.

anymail sends one message per API call. Some ESPs accept a list of *different* messages in one
call (Postmark's /email/batch takes 500), which saves an HTTP round trip and most of the client
work per message. A BatchSender builds each message's payload with the ESP's own anymail
backend, so everything anymail does to a message still happens; only the HTTP call is shared.
One module per provider, as anymail does with anymail/backends/; registry.py picks one. This
base imports no provider.
"""

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from anymail.message import AnymailMessage

from mailings.sending.errors import SendError

# An address every writer writes as it is: ASCII, no display name, nothing to quote or encode.
# A message to one is built without parsing its address (esp/smtp.py, esp/postmark.py).
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


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
