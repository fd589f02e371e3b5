"""The circuit breaker that hears the ESP: pause a mailing that draws complaints or hard bounces.

Gmail and Yahoo refuse bulk mail from senders whose complaint rate passes 0.3%, and an ESP
suspends an account that keeps mailing dead addresses. So a sending mailing pauses itself, with
the reason in the admin, once at least RALLY_BREAKER_MIN_SAMPLE of its messages were sent and
RALLY_BREAKER_COMPLAINT_RATE (complaints) or RALLY_BREAKER_HARD_BOUNCE_RATE (hard bounces) of
them came back so. The rates count deliveries by their `esp_status`, as the tracking queue sets
it (mailings/feedback/), against deliveries sent.

Who calls it: the tracking queue after it applies a bounce or a complaint, and the send queue
after every batch (complaints that came in before the sample was large enough are judged again
as the sample grows, even if no more come in).

Cheap enough for every bounce of a 1M-recipient send:
- one PK lookup ends it for a mailing that is no longer sending (bounces go on arriving for
  hours after a send finishes);
- the counting runs at most once per RALLY_BREAKER_CHECK_SECONDS per mailing (a Redis key,
  SET NX with that expiry). A call that finds the key taken makes sure one more check runs when
  it expires (a task on the tracking queue, at most one per interval), so a trip is never
  missed for longer than that, even if the storm ends with the call that was skipped;
- bounces and complaints are counted from a small partial index (`delivery_mailing_esp_trouble`)
  and the sent messages only up to the number beyond which neither rate can pass its limit, so
  a healthy mailing counts few rows and one with no trouble at all counts none.
Redis being down only costs the throttle: the check then runs every time.

After a resume the breaker judges only the messages sent since the last resume. The campaigner
saw the numbers that tripped it and chose to go on; the same old complaints must not pause it
again at once, and forever. It trips again only when the messages sent since the resume reach
the sample size and pass a limit on their own.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime

import redis
from django.conf import settings
from django.db.models import Count

from config.redis import redis_client
from mailings.models import Delivery, Mailing, MailingAuditEntry
from mailings.sending import tasks
from mailings.sending.control import mailing_pause

logger = logging.getLogger(__name__)

THROTTLE_KEY = "rally:esp-breaker:checked:{mailing_id}"
# Taken by the call that queued the check to run once the throttle expires.
TRAILING_KEY = "rally:esp-breaker:again:{mailing_id}"

EspStatus = Delivery.EspStatus


@dataclass(frozen=True)
class EspFeedback:
    """A mailing's messages sent (since its last resume) and the trouble they drew."""

    # Exact when a limit is passed; otherwise possibly a lower bound (see esp_feedback_counts).
    sent: int
    complaints: int
    hard_bounces: int
    # When the messages counted start: the last resume, or None for the whole send.
    since: datetime | None


def mailing_check_esp_feedback(*, mailing_id: int) -> bool:
    """Pause a sending mailing whose complaints or hard bounces passed their limits.

    Return True when this call paused it. For the tracking queue, after applying a bounce or a
    complaint; safe and cheap to call for every event (see the module's docstring).
    """
    return _check_throttled(mailing_id=mailing_id, trailing=True)


def mailing_check_esp_feedback_from_send(*, mailing_id: int) -> bool:
    """Check as `mailing_check_esp_feedback` does, after a batch: the sample grew.

    No trailing check is queued: while the mailing sends, the next batch checks again.
    """
    return _check_throttled(mailing_id=mailing_id, trailing=False)


def mailing_check_esp_feedback_now(*, mailing_id: int) -> bool:
    """Count now, whatever the throttle, and pause when a limit is passed; True if it paused."""
    if not _sending(mailing_id):
        return False
    feedback = esp_feedback_counts(mailing_id=mailing_id)
    reason = esp_feedback_trip_reason(feedback)
    if reason is None:
        return False
    paused = mailing_pause(mailing_id=mailing_id, reason=reason)
    if paused:
        logger.error("Mailing %s: %s", mailing_id, reason)
    return paused


def _check_throttled(*, mailing_id: int, trailing: bool) -> bool:
    if not _sending(mailing_id):
        return False
    interval_ms = max(1, int(settings.RALLY_BREAKER_CHECK_SECONDS * 1000))
    client = redis_client()
    try:
        first = client.set(THROTTLE_KEY.format(mailing_id=mailing_id), 1, nx=True, px=interval_ms)
        again = (
            not first
            and trailing
            and client.set(TRAILING_KEY.format(mailing_id=mailing_id), 1, nx=True, px=interval_ms)
        )
    except redis.RedisError as error:
        logger.warning("Redis unavailable, checking ESP feedback unthrottled: %s", error)
        first, again = True, False
    if first:
        return mailing_check_esp_feedback_now(mailing_id=mailing_id)
    if again:
        # What this call skipped is counted by then: its event is committed long before.
        try:
            tasks.mailing_check_esp_feedback_task.apply_async(
                (mailing_id,), countdown=interval_ms / 1000, queue="tracking"
            )
        except Exception as error:  # noqa: BLE001 -- kombu raises its own types
            # The next event or batch checks again; losing this one only delays a trip.
            logger.warning("Could not queue the breaker's next check: %s", error)
    return False


def _sending(mailing_id: int) -> bool:
    return Mailing.objects.filter(pk=mailing_id, status=Mailing.Status.SENDING).exists()


def esp_feedback_counts(*, mailing_id: int) -> EspFeedback:
    """Count a mailing's complaints, hard bounces and sent messages since its last resume.

    `sent` is exact whenever it is below the count at which neither rate could pass its limit
    any more; above that it is counted only up to there (so it is a lower bound, and no limit
    is passed either way). With no complaint or bounce that could ever pass a limit over the
    minimum sample, sent messages are not counted at all (`sent` is 0).
    """
    since = (
        MailingAuditEntry.objects.filter(
            mailing_id=mailing_id, action=MailingAuditEntry.Action.RESUMED
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    window = {"sent_at__gte": since} if since is not None else {}
    # Served by the partial index delivery_mailing_esp_trouble: it holds only these rows.
    trouble = dict(
        Delivery.objects.filter(
            mailing_id=mailing_id,
            esp_status__in=Delivery.HARD_ESP_STATUSES,
            **window,
        )
        .values_list("esp_status")
        .annotate(count=Count("pk"))
        .order_by()
    )
    complaints = trouble.get(EspStatus.COMPLAINED, 0)
    hard_bounces = trouble.get(EspStatus.BOUNCED, 0)
    complaint_rate = settings.RALLY_BREAKER_COMPLAINT_RATE
    bounce_rate = settings.RALLY_BREAKER_HARD_BOUNCE_RATE
    # Past this many sent messages, neither count is over its limit: no need to count further.
    beyond = [_beyond_limit(complaints, complaint_rate), _beyond_limit(hard_bounces, bounce_rate)]
    enough = None if None in beyond else max(beyond)
    sent = 0
    if enough is None or enough > settings.RALLY_BREAKER_MIN_SAMPLE:
        # The partial index delivery_mailing_sent_at holds exactly the sent rows.
        sent_rows = Delivery.objects.filter(
            mailing_id=mailing_id, status=Delivery.Status.SENT, **window
        ).order_by()
        sent = (sent_rows if enough is None else sent_rows[:enough]).count()
    return EspFeedback(sent=sent, complaints=complaints, hard_bounces=hard_bounces, since=since)


def _beyond_limit(count: int, rate: float) -> int | None:
    """Return a number of sent messages over which `count` is not more than `rate` of them.

    None when there is none: any complaint passes a limit of zero.
    """
    if count == 0:
        return 0
    if rate <= 0:
        return None
    # One more than count / rate, and one for the rounding of the float division.
    return math.floor(count / rate) + 2


def esp_feedback_trip_reason(feedback: EspFeedback) -> str | None:
    """Say why the mailing must pause, for the admin; None when no limit is passed."""
    sent = feedback.sent
    if sent < settings.RALLY_BREAKER_MIN_SAMPLE or sent == 0:
        return None
    checks = [
        (
            feedback.complaints,
            settings.RALLY_BREAKER_COMPLAINT_RATE,
            "drew spam complaints",
            "Check the audience and content before resuming.",
        ),
        (
            feedback.hard_bounces,
            settings.RALLY_BREAKER_HARD_BOUNCE_RATE,
            "hard-bounced",
            "Check where these addresses came from before resuming: an ESP suspends accounts "
            "that keep mailing addresses that do not exist.",
        ),
    ]
    scope = "sent messages" if feedback.since is None else "messages sent since it was resumed"
    for count, limit, happened, advice in checks:
        if count > limit * sent:
            rate, limit_text = _percentages(count / sent, limit)
            return (
                f"Paused automatically: {count:,} of {sent:,} {scope} ({rate}) {happened}; "
                f"the limit is {limit_text}. {advice}"
            )
    return None


def _percentages(rate: float, limit: float) -> tuple[str, str]:
    """Format a rate and its limit as percentages precise enough to tell them apart."""
    for decimals in (1, 2, 3):
        rate_text, limit_text = (_percent(value, decimals) for value in (rate, limit))
        if rate_text != limit_text:
            break
    return rate_text, limit_text


def _percent(value: float, decimals: int) -> str:
    text = f"{value * 100:.{decimals}f}".rstrip("0").rstrip(".")
    return f"{text}%"
