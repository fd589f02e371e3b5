"""Whether anyone listens for an event type: asked on every signing, so kept in memory.

Signing is benchmarked, and most installations subscribe to nothing: the answer is read from
the database at most once per CACHE_SECONDS per process, and a signature costs a look-up in a
frozenset. A subscription made or changed in another process is heard within CACHE_SECONDS;
the process that made it forgets its copy at once (subscribed_event_types_forget). A database
that cannot answer the question costs the change that asked nothing: the last answer stands.
"""

import logging
import time

from django.db import DatabaseError, transaction

from .models import WebhookSubscription

logger = logging.getLogger(__name__)

CACHE_SECONDS = 5.0

# (monotonic time the answer expires, the event types some active subscription hears)
_cached: tuple[float, frozenset[str]] | None = None


def subscribed_event_types() -> frozenset[str]:
    """Return the event types at least one active subscription hears (cached, see above)."""
    global _cached
    now = time.monotonic()
    cached = _cached
    if cached is not None and now < cached[0]:
        return cached[1]
    heard: set[str] = set()
    try:
        # A savepoint of its own: a failure here must not abort the transaction of the
        # signature or unsubscribe that asked, which has already done its work.
        with transaction.atomic():
            subscriptions = WebhookSubscription.objects.filter(active=True)
            for events in subscriptions.values_list("events", flat=True):
                heard.update(events)
    except DatabaseError:
        logger.warning("Could not read the webhook subscriptions; no events for now", exc_info=True)
        heard = set(cached[1]) if cached is not None else set()
    answer = frozenset(heard)
    _cached = (now + CACHE_SECONDS, answer)
    return answer


def event_type_is_subscribed(event_type: str) -> bool:
    return event_type in subscribed_event_types()


def subscribed_event_types_forget() -> None:
    """Drop this process' cached answer, so the next question reads the database."""
    global _cached
    _cached = None
