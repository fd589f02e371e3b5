"""Whether anyone listens for an event type: asked on every signing, so kept in memory.

Signing is benchmarked, and most installations subscribe to nothing: the answer is read from
the database at most once per CACHE_SECONDS per process, and a signature costs a look-up in a
frozenset. A subscription made or changed in another process is heard within CACHE_SECONDS;
the process that made it forgets its copy at once (subscribed_event_types_forget).
"""

import time

from .models import WebhookSubscription

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
    for events in WebhookSubscription.objects.filter(active=True).values_list("events", flat=True):
        heard.update(events)
    answer = frozenset(heard)
    _cached = (now + CACHE_SECONDS, answer)
    return answer


def event_type_is_subscribed(event_type: str) -> bool:
    return event_type in subscribed_event_types()


def subscribed_event_types_forget() -> None:
    """Drop this process' cached answer, so the next question reads the database."""
    global _cached
    _cached = None
