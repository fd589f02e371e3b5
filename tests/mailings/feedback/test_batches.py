"""Events in batches: stored together, queued as one task, applied as one after another would."""

import json

import pytest

from mailings.feedback import intake, tasks
from mailings.feedback.processing import tracking_event_process, tracking_events_process
from mailings.models import Delivery, TrackingEvent
from supporters.models import Supporter
from tests.factories import DeliveryFactory

from .payloads import ESPS, Message, basic_auth, message_id_for, metadata_for

pytestmark = pytest.mark.django_db

# (delivery, kind, serial): one delivery's events out of order, first opens and clicks, a
# supporter's soft bounces from two mailings, a complaint, an erased supporter (delivery 2),
# a message Rally never sent (delivery 3's events carry no metadata and a foreign id).
SCENARIO = [
    (0, "delivered", 1),
    (0, "hard_bounce", 3),
    (0, "delivered", 2),
    (0, "complaint", 4),
    (1, "open", 5),
    (1, "open", 6),
    (1, "click", 7),
    (1, "soft_bounce", 8),
    (4, "soft_bounce", 9),
    (2, "hard_bounce", 10),
    (3, "delivered", 11),
]


def postmark_raw(kind: str, delivery, serial: int, *, known=True) -> dict:
    message = Message(
        email=delivery.supporter.email,
        message_id=message_id_for("postmark", serial) if known else f"foreign-{serial}",
        metadata=metadata_for(delivery) if known else {},
        serial=serial,
    )
    if kind == "open":
        return {
            "RecordType": "Open",
            "FirstOpen": True,
            "MessageID": message.message_id,
            "ReceivedAt": f"2026-11-30T12:{serial:02}:00Z",
            "Recipient": message.email,
            "Metadata": message.metadata,
        }
    return json.loads(ESPS["postmark"](kind, message).body)


def store_scenario() -> tuple[list[Delivery], list[int]]:
    """Store the scenario's events (through intake, as posts are); return deliveries, event ids."""
    deliveries = [DeliveryFactory(esp_message_id="") for _ in range(4)]
    # Another mailing's message to the supporter of delivery 1: their second soft bounce.
    deliveries.append(DeliveryFactory(esp_message_id="", supporter=deliveries[1].supporter))
    Supporter.objects.filter(pk=deliveries[2].supporter_id).update(status=Supporter.Status.ERASED)
    rows = []
    for index, kind, serial in SCENARIO:
        raw = postmark_raw(kind, deliveries[index], serial, known=index != 3)
        rows.append(_row_of(raw))
    return deliveries, intake.tracking_events_store(rows=rows)


def _row_of(raw: dict) -> dict:
    from anymail.webhooks.postmark import PostmarkTrackingWebhookView

    # anymail's own parsing, as the webhook view does it before it signals the event.
    event = PostmarkTrackingWebhookView().esp_to_anymail_event(raw)
    return intake.tracking_event_row(event=event, esp_name="Postmark")


def snapshot(deliveries: list[Delivery], event_pks: list[int]) -> list:
    """Return what processing left, without ids, for comparing two runs."""
    rows = []
    for delivery in deliveries:
        delivery.refresh_from_db()
        supporter = Supporter.objects.get(pk=delivery.supporter_id)
        rows.append(
            (
                delivery.esp_status,
                delivery.esp_status_at,
                delivery.opened_at,
                delivery.clicked_at,
                supporter.status,
                bool(supporter.suppressed_at),
            )
        )
    for event in TrackingEvent.objects.filter(pk__in=event_pks).order_by("pk"):
        delivery_index = next(
            (n for n, d in enumerate(deliveries) if d.pk == event.delivery_id), None
        )
        rows.append(
            (event.outcome, delivery_index, bool(event.recipient), bool(event.processed_at))
        )
    return rows


def test_a_batch_leaves_exactly_what_its_events_one_after_another_leave(settings, monkeypatch):
    from mailings.feedback import processing

    settings.RALLY_SOFT_BOUNCE_LIMIT = 2
    asked = []
    monkeypatch.setattr(
        processing, "mailing_check_esp_feedback", lambda *, mailing_id: asked.append(mailing_id)
    )

    one_by_one, one_by_one_pks = store_scenario()
    outcomes = [tracking_event_process(event_pk=pk) for pk in one_by_one_pks]
    expected = snapshot(one_by_one, one_by_one_pks)
    asked_one_by_one, asked[:] = list(asked), []
    # The same events again, for other deliveries: the first run's are forgotten.
    TrackingEvent.objects.filter(pk__in=one_by_one_pks).delete()
    batched, batched_pks = store_scenario()
    assert len(batched_pks) == len(SCENARIO)
    batch_outcomes = tracking_events_process(event_pks=batched_pks)

    assert list(batch_outcomes.values()) == outcomes
    assert snapshot(batched, batched_pks) == expected
    assert expected[0][0] == Delivery.EspStatus.COMPLAINED
    assert expected[1][4] == Supporter.Status.BOUNCED  # two soft bounces
    # The breaker hears a mailing once per batch, where one after another asks per change.
    assert asked == [batched[0].mailing_id]
    assert asked_one_by_one == [one_by_one[0].mailing_id] * 2
    # A batch queued again (the sweep, a redelivered task) finds its events done.
    assert tracking_events_process(event_pks=batched_pks) == {}


def test_posts_written_together_store_each_event_once_and_queue_one_task(
    django_capture_on_commit_callbacks, monkeypatch
):
    deliveries = [DeliveryFactory(esp_message_id="") for _ in range(3)]
    rows = [_row_of(postmark_raw("delivered", d, n)) for n, d in enumerate(deliveries)]
    pushed = []
    monkeypatch.setattr(tasks.tracking_events_process_task, "delay", pushed.append)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        # Three posts as the group commit hands them over: the third repeats the first's event.
        new_ids = intake.tracking_events_write([[rows[0], rows[1]], [rows[2]], [rows[0]]])

    assert TrackingEvent.objects.count() == 3
    assert [len(ids) for ids in new_ids] == [2, 1, 0]
    assert len(queued) == 1
    assert pushed == [sorted(new_ids[0] + new_ids[1])]
    with django_capture_on_commit_callbacks() as replay_queued:
        assert intake.tracking_events_write([[rows[1]]]) == [[]]
    assert replay_queued == []


def test_a_webhook_post_answered_200_has_its_events_committed_and_queued(
    client, django_capture_on_commit_callbacks, monkeypatch
):
    delivery = DeliveryFactory(esp_message_id="")
    pushed = []
    monkeypatch.setattr(tasks.tracking_events_process_task, "delay", pushed.append)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.generic(
            "POST",
            "/anymail/postmark/tracking/",
            json.dumps(postmark_raw("delivered", delivery, 1)).encode(),
            content_type="application/json",
            **basic_auth(),
        )

    assert response.status_code == 200
    assert pushed == [[TrackingEvent.objects.get().pk]]
