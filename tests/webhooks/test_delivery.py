"""Delivering webhooks with real parts: a Celery worker on the `webhooks` queue, a local HTTP
receiver that checks signatures with code of its own, the test database and Redis.

Time is driven through the rows (an event's created_at, a delivery's next_attempt_at), never by
sleeping: a retry that is due is found by the worker's beat sweep.
"""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.processes import free_port, purge_test_redis, wait_for
from tests.webhooks.receiver import HANG, signature_is_valid, webhook_endpoint
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services import (
    EventSubject,
    webhook_deliveries_queue_due,
    webhook_delivery_attempt,
    webhook_events_record,
    webhook_subscription_create,
)

from .conftest import SECRET

Status = WebhookDelivery.Status
DATA = {"identifiers": ["rally:0b7c0f4e-2f7e-4c55-9d36-6a1f3b2f9c10"], "name": "Free them"}


def subscribe(url: str, events=("mailing.sent",), secret: str = SECRET):
    return webhook_subscription_create(url=url, events=list(events), secret=secret)


def record(event_type: str = "mailing.sent", data=DATA) -> list[int]:
    return webhook_events_record(event_type=event_type, subjects=[EventSubject(data)])


def delivery_in(status: str, delivery_id: int, worker):
    def settled():
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        return delivery if delivery.status == status else None

    return wait_for(
        settled,
        timeout=60,
        message=lambda: (
            f"delivery is {WebhookDelivery.objects.get(pk=delivery_id).status}, not {status}; "
            f"worker log:\n{worker.log()[-3000:]}"
        ),
    )


def make_due(delivery_id: int) -> None:
    """Bring a scheduled retry's time forward to now, as if its back-off had passed."""
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_signed_so_that_an_independent_verifier_accepts_it(endpoint, webhook_worker):
    worker = webhook_worker()
    subscribe(endpoint.url())
    [delivery_id] = record()
    delivery = delivery_in(Status.SUCCEEDED, delivery_id, worker)
    [received] = endpoint.all()

    header = received.headers["Rally-Signature"]
    assert signature_is_valid(secret=SECRET, header=header, body=received.body)
    assert not signature_is_valid(secret="another-secret", header=header, body=received.body)
    assert not signature_is_valid(secret=SECRET, header=header, body=received.body + b" ")
    # A signature replayed long after it was made is refused by the receiver's clock.
    assert not signature_is_valid(
        secret=SECRET, header=header, body=received.body, now=time.time() + 3600
    )

    event = WebhookEvent.objects.get()
    body = json.loads(received.body)
    assert body == {
        "id": str(event.event_id),
        "type": "mailing.sent",
        "created": event.created_at.isoformat(),
        "data": DATA,
    }
    assert received.headers["Content-Type"] == "application/json"
    assert "Rally" in received.headers["User-Agent"]
    assert received.headers["Idempotency-Key"] == str(event.event_id)
    assert received.path == "/hooks/rally"
    assert delivery.attempts == 1 and delivery.response_status == 200
    assert delivery.response_body == '{"ok": true}'
    assert delivery.next_attempt_at is None and delivery.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_receiver_answering_500_is_retried_with_the_same_event_and_then_succeeds(
    endpoint, webhook_worker
):
    endpoint.answers = [500, 503]
    worker = webhook_worker(beat=True)
    subscribe(endpoint.url())
    [delivery_id] = record()

    for attempt in (1, 2):
        wait_for(lambda n=attempt: endpoint.count() >= n, timeout=60, message=worker.log)
        delivery = wait_for(
            lambda n=attempt: WebhookDelivery.objects.filter(
                pk=delivery_id, attempts=n, locked_until__isnull=True
            ).first(),
            timeout=30,
            message=worker.log,
        )
        assert delivery.status == Status.PENDING
        assert delivery.response_status == (500 if attempt == 1 else 503)
        # Back-off grows, with jitter: about 30 s after the first failure, 60 s after the second.
        wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
        assert 15 * attempt <= wait <= 30 * attempt + 1
        make_due(delivery_id)

    delivery = delivery_in(Status.SUCCEEDED, delivery_id, worker)
    assert delivery.attempts == 3
    bodies = {received.body for received in endpoint.all()}
    keys = {received.headers["Idempotency-Key"] for received in endpoint.all()}
    assert len(bodies) == 1 and len(keys) == 1, "every attempt sends the same event"


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_hangs_times_out_is_retried_and_never_holds_up_another(webhook_worker):
    timeout = 2  # RALLY_WEBHOOK_TIMEOUT_SECONDS of this worker
    with webhook_endpoint() as slow, webhook_endpoint() as fast:
        slow.answers = [HANG]  # its first request hangs; the others are answered at once
        slow_subscription = subscribe(slow.url())
        subscribe(fast.url())
        delivery_ids = record() + record() + record()
        worker = webhook_worker(beat=True)

        wait_for(lambda: fast.count() == 3, timeout=60, message=worker.log)
        hung = slow.all()[0]
        hanging_id = WebhookDelivery.objects.get(
            subscription=slow_subscription, event__event_id=hung.payload["id"]
        ).pk
        # Every other delivery went out while the hanging one held its pool process: none
        # waited for its timeout.
        assert all(received.at < hung.at + timeout for received in fast.all())

        delivery = wait_for(
            lambda: WebhookDelivery.objects.filter(
                pk=hanging_id, attempts=1, locked_until__isnull=True
            ).first(),
            timeout=30,
            message=worker.log,
        )
        assert delivery.status == Status.PENDING
        assert delivery.response_status is None
        assert delivery.response_body == f"No answer within {timeout} seconds."
        assert (delivery.next_attempt_at - timezone.now()).total_seconds() > 10
        make_due(hanging_id)
        delivery_in(Status.SUCCEEDED, hanging_id, worker)
        for delivery_id in delivery_ids:
            delivery_in(Status.SUCCEEDED, delivery_id, worker)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_still_failing_when_its_window_closes_is_given_up(endpoint, webhook_worker):
    endpoint.answers = [500]
    subscribe(endpoint.url())
    [delivery_id] = record()
    # The event happened a day ago (RALLY_WEBHOOK_RETRY_HOURS is 24): the next retry would
    # fall past the window.
    WebhookEvent.objects.update(created_at=timezone.now() - timedelta(hours=24))
    worker = webhook_worker(beat=True)

    delivery = delivery_in(Status.GIVEN_UP, delivery_id, worker)
    assert delivery.attempts == 1 and delivery.response_status == 500
    assert delivery.next_attempt_at is None
    assert webhook_deliveries_queue_due() == 0
    assert endpoint.count() == 1


@pytest.mark.django_db(transaction=True)
def test_deliveries_whose_tasks_redis_lost_are_found_again_by_the_sweep(endpoint, webhook_worker):
    subscribe(endpoint.url())
    delivery_ids = record() + record()
    purge_test_redis()  # Redis restarted empty: the queued tasks are gone
    worker = webhook_worker(beat=True)
    for delivery_id in delivery_ids:
        delivery_in(Status.SUCCEEDED, delivery_id, worker)
    assert endpoint.count() == 2


@pytest.mark.django_db
def test_a_refusal_other_than_429_fails_for_good_without_a_retry(endpoint):
    endpoint.answers = [410]
    subscribe(endpoint.url())
    [delivery_id] = record()
    outcome = webhook_delivery_attempt(delivery_id=delivery_id)
    assert outcome.status == Status.FAILED
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.status == Status.FAILED and delivery.response_status == 410
    assert delivery.next_attempt_at is None
    assert webhook_delivery_attempt(delivery_id=delivery_id) is None
    assert webhook_deliveries_queue_due() == 0
    assert endpoint.count() == 1


@pytest.mark.django_db
def test_429_is_retried_and_a_redirect_is_not_followed(endpoint):
    endpoint.answers = [429, 302]
    subscribe(endpoint.url())
    [delivery_id] = record()
    assert webhook_delivery_attempt(delivery_id=delivery_id).status == Status.PENDING
    make_due(delivery_id)
    outcome = webhook_delivery_attempt(delivery_id=delivery_id)
    assert outcome.status == Status.FAILED and outcome.response_status == 302
    assert endpoint.count() == 2


@pytest.mark.django_db
def test_a_receiver_asking_to_wait_longer_than_the_back_off_is_obeyed(endpoint):
    endpoint.answers = [503, 429]
    endpoint.answer_headers = {"Retry-After": "600"}
    subscribe(endpoint.url())
    [delivery_id] = record()
    webhook_delivery_attempt(delivery_id=delivery_id)
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds() >= 600

    endpoint.answer_headers = {"Retry-After": "86400"}  # a day: more than the cap
    make_due(delivery_id)
    webhook_delivery_attempt(delivery_id=delivery_id)
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    # Counted from the end of the attempt; the attempt itself took a moment.
    assert 3600 <= (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds() < 3660


@pytest.mark.django_db
def test_a_delivery_not_yet_due_or_taken_by_another_worker_is_not_attempted(endpoint):
    subscribe(endpoint.url())
    [delivery_id] = record()
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        locked_until=timezone.now() + timedelta(minutes=1)
    )
    assert webhook_delivery_attempt(delivery_id=delivery_id) is None
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        locked_until=None, next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    assert webhook_delivery_attempt(delivery_id=delivery_id) is None
    assert endpoint.count() == 0


@pytest.mark.django_db
def test_a_connection_refused_is_retried(endpoint):
    subscription = subscribe(endpoint.url())
    [delivery_id] = record()
    type(subscription).objects.filter(pk=subscription.pk).update(
        url=f"http://127.0.0.1:{free_port()}/gone"  # nothing listens there
    )
    outcome = webhook_delivery_attempt(delivery_id=delivery_id)
    assert outcome.status == Status.PENDING
    assert outcome.detail.startswith("Could not connect")


@pytest.mark.django_db
def test_a_name_that_now_resolves_inside_the_network_is_refused_when_connecting(endpoint, settings):
    # Saved while private destinations were allowed (or while its DNS answered a public
    # address): the check at connection time is the one that counts.
    subscribe(endpoint.url(host="localhost"))
    [delivery_id] = record()
    settings.RALLY_WEBHOOK_ALLOW_PRIVATE = False
    outcome = webhook_delivery_attempt(delivery_id=delivery_id)
    assert outcome.status == Status.FAILED
    assert "webhooks may not point inside the server's network" in outcome.detail
    assert endpoint.count() == 0
