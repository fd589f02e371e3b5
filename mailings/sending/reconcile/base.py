"""Ask an ESP which of Rally's messages it accepted, by the metadata Rally attached to each.

Every bulk message carries `{"delivery_id", "mailing_id"}` as anymail metadata
(mailings/content/rendering.py), and every ESP Rally sends through over an API keeps it and can
be searched by it. A Reconciler asks one ESP; one module per provider, as esp/ sends with one
module per provider, and registry.py picks. This base imports no provider.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Accepted:
    """The ESP has the message: its id, for the ledger and the ESP's webhooks."""

    message_id: str


@dataclass
class Lookup:
    """What the ESP said about some deliveries.

    `answers` holds each delivery the ESP could answer for: what it accepted, or None where
    its record proves it never accepted the message. A delivery not in it went unanswered,
    and `reason` says why (a 5xx, a timeout, a search that cannot be trusted yet).
    """

    answers: dict[int, Accepted | None] = field(default_factory=dict)
    reason: str = ""


class Reconciler(ABC):
    #: Whether the ESP's search runs behind its API: a message accepted a moment ago may not
    #: be found yet. The service then checks the search against a delivery it knows was sent.
    search_lags: bool = True
    #: How many days the ESP keeps its record of what it accepted (None: for ever). Older, a
    #: message it does not list may have been accepted and forgotten: proof of nothing.
    record_days: int | None = None

    @abstractmethod
    def look_up(
        self, *, mailing_id: int, delivery_ids: list[int], since: datetime, until: datetime
    ) -> Lookup:
        """Say, for each delivery of one mailing, whether the ESP accepted its message.

        Only messages the ESP received between `since` and `until` count: every delivery
        asked about could only have been sent then, and messages received after `until` are
        left out so that the search's answer does not change while it is read page by page.
        Never raises for the ESP's trouble: what it could not answer is left out of
        `answers`, with the reason.
        """
