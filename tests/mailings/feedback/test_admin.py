"""What the ESP said, as a campaigner reads it in the admin."""

import pytest

from mailings.models import TrackingEvent
from tests.factories import DeliveryFactory

from .conftest import process_stored_events
from .payloads import ESPS, Message, message_id_for, metadata_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def complained_delivery(post_webhook):
    delivery = DeliveryFactory(esp_message_id="", supporter__email="angry@example.org")
    message = Message(
        email="angry@example.org",
        message_id=message_id_for("postmark", 1),
        metadata=metadata_for(delivery),
    )
    post_webhook(ESPS["postmark"]("complaint", message))
    process_stored_events()
    return delivery


def test_tracking_events_are_listed_filtered_and_searched_but_never_edited(
    admin_client, complained_delivery
):
    pages = [
        "/admin/mailings/trackingevent/",
        "/admin/mailings/trackingevent/?esp=postmark&event_type=complained&outcome=applied",
        "/admin/mailings/trackingevent/?q=angry%40example.org",
        f"/admin/mailings/trackingevent/?q={message_id_for('postmark', 1)}",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200
        assert "angry@example.org" in response.content.decode(), page

    event = TrackingEvent.objects.get()
    change_page = admin_client.get(f"/admin/mailings/trackingevent/{event.pk}/change/")
    assert change_page.status_code == 200
    assert 'name="_save"' not in change_page.content.decode()
    assert admin_client.get("/admin/mailings/trackingevent/add/").status_code == 403
    delete = admin_client.post(f"/admin/mailings/trackingevent/{event.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert TrackingEvent.objects.filter(pk=event.pk).exists()


def test_deliveries_show_and_filter_by_what_the_esp_said(admin_client, complained_delivery):
    response = admin_client.get("/admin/mailings/delivery/?esp_status=complained")
    assert response.status_code == 200
    assert "angry@example.org" in response.content.decode()
    assert "Complaint" in response.content.decode()


def test_a_suppressed_supporter_shows_when_and_why_read_only(admin_client, complained_delivery):
    page = admin_client.get(
        f"/admin/supporters/supporter/{complained_delivery.supporter_id}/change/"
    ).content.decode()
    assert "Suppression reason" in page
    assert "postmark complained" in page
    assert 'name="suppression_reason"' not in page
