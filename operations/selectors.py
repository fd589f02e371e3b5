"""What the operator's page shows: queue lengths in the broker, workers, sends in progress."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from kombu.transport.redis import PRIORITY_STEPS, Channel

from config.heartbeats import WorkerHeartbeat, worker_heartbeats
from mailings.models import Delivery, Mailing


@dataclass(frozen=True)
class QueueLength:
    name: str
    waiting: int


@dataclass(frozen=True)
class BrokerState:
    """Tasks waiting in each queue, and tasks workers hold (running, prefetched or delayed)."""

    queues: tuple[QueueLength, ...]
    held_by_workers: int


def broker_state() -> BrokerState:
    """Read the queue lengths from the broker's Redis, as Celery's Redis transport keeps them.

    Each queue is a Redis list named after it, plus one list per priority step (name, a
    separator, the step); a task a worker has taken but not acknowledged (acks late: until it
    has run) sits in the `unacked` hash instead. Raises redis.RedisError when Redis is down.
    """
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2
    )
    try:
        names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
        pipe = client.pipeline(transaction=False)
        for name in names:
            for step in PRIORITY_STEPS:
                pipe.llen(f"{name}{Channel.sep}{step}" if step else name)
        pipe.hlen(Channel.unacked_key)
        *lengths, held = pipe.execute()
    finally:
        client.close()
    steps = len(PRIORITY_STEPS)
    queues = tuple(
        QueueLength(name=name, waiting=sum(lengths[i * steps : (i + 1) * steps]))
        for i, name in enumerate(names)
    )
    return BrokerState(queues=queues, held_by_workers=held)


def workers() -> list[WorkerHeartbeat]:
    """Return the workers that recorded a heartbeat in the last day, freshest first."""
    return worker_heartbeats()


@dataclass(frozen=True)
class SendInProgress:
    """A sending mailing and its last batch, from the ledger."""

    mailing: Mailing
    # When a worker last claimed a batch of it (Mailing.heartbeat_at), and the newest message
    # sent, with the worker that sent it.
    last_claimed_at: datetime | None
    last_sent_at: datetime | None
    last_sent_by: str
    pending: int
    claimed: int
    # Workers holding a claimed batch of it right now.
    claimed_by: tuple[str, ...]

    @property
    def stalled(self) -> bool:
        """No batch claimed for RALLY_SEND_STALL_SECONDS: the sweep will queue its chains again."""
        last = self.last_claimed_at or self.mailing.started_at
        stall = timedelta(seconds=settings.RALLY_SEND_STALL_SECONDS)
        return last is None or timezone.now() - last > stall


def sends_in_progress() -> list[SendInProgress]:
    """Return every sending mailing with its last batch, oldest send first.

    Each is read from indexes alone: the newest sent row from `delivery_mailing_sent_at`, the
    pending and claimed counts from `delivery_mailing_status_id`.
    """
    sends = []
    for mailing in Mailing.objects.filter(status=Mailing.Status.SENDING).order_by("started_at"):
        deliveries = Delivery.objects.filter(mailing=mailing)
        last_sent = (
            deliveries.filter(status=Delivery.Status.SENT)
            .order_by("-sent_at")
            .values_list("sent_at", "claimed_by")
            .first()
        )
        counts = dict(
            deliveries.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.CLAIMED])
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        claimed_by = (
            deliveries.filter(status=Delivery.Status.CLAIMED)
            .values_list("claimed_by", flat=True)
            .distinct()
            .order_by("claimed_by")
        )
        sends.append(
            SendInProgress(
                mailing=mailing,
                last_claimed_at=mailing.heartbeat_at,
                last_sent_at=last_sent[0] if last_sent else None,
                last_sent_by=last_sent[1] if last_sent else "",
                pending=counts.get(Delivery.Status.PENDING, 0),
                claimed=counts.get(Delivery.Status.CLAIMED, 0),
                claimed_by=tuple(claimed_by),
            )
        )
    return sends
