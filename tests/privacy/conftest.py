import datetime
import json

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from mailings.models import (
    Delivery,
    LinkClick,
    MailingAuditEntry,
    OutboxMessage,
    TrackingEvent,
)
from supporters.models import Engagement, Supporter, SupporterImport, SupporterImportRejection
from supporters.services import consent_record_create
from tests.factories import MailingFactory, SignatureFactory, SupporterFactory, TagFactory

# Distinctive enough that finding any of these in a database dump can only mean this person.
EMAIL = "zelda.quartermaine@example.org"
FIRST_NAME = "Zelda"
LAST_NAME = "Quartermaine"
POSTCODE = "ZZ9 9ZZ"


@pytest.fixture
def zelda() -> Supporter:
    """A supporter with data in every table that can hold some, and a bystander beside her.

    Signed two petitions (one credited to a mailing), consented, tagged; two mailings sent
    (one bounced, its error quoting her address), ESP events with her address in their
    payload (one matching no delivery), clicks (one link quoting her address), a confirmation
    email and a test send rendered as her in the outbox, an audit entry and admin history
    naming her.
    """
    zelda = SupporterFactory(
        email=EMAIL, first_name=FIRST_NAME, last_name=LAST_NAME, postcode=POSTCODE, country="NZ"
    )
    bystander = SupporterFactory(email="bystander@example.org", first_name="Bea")
    zelda.tags.set([TagFactory(name="volunteers"), TagFactory(name="donors")])
    bystander.tags.set([TagFactory(name="volunteers")])
    consent_record_create(
        supporter=zelda, wording="Keep me informed.", source_url="https://rally.example/p/x/",
        ip="203.0.113.7", resubscribe=False,
    )  # fmt: skip
    consent_record_create(supporter=bystander, wording="Keep me informed.", resubscribe=False)
    appeal, follow_up = MailingFactory(name="Spring appeal"), MailingFactory(name="Follow-up")
    SignatureFactory(supporter=zelda, petition=appeal.petition, mailing=appeal, source="mailing")
    SignatureFactory(supporter=zelda, consented=True)
    SignatureFactory(supporter=bystander, petition=appeal.petition)
    sent_at = timezone.now() - datetime.timedelta(days=2)
    delivered = Delivery.objects.create(
        mailing=appeal, supporter=zelda, status=Delivery.Status.SENT, sent_at=sent_at,
        esp_message_id="pm-0f3c9a7e-zelda", esp_status=Delivery.EspStatus.DELIVERED,
        esp_status_at=sent_at, opened_at=sent_at, clicked_at=sent_at,
    )  # fmt: skip
    bounced = Delivery.objects.create(
        mailing=follow_up, supporter=zelda, status=Delivery.Status.FAILED,
        esp_message_id="pm-77aa-bounce",
        error=f"550 5.1.1 <{EMAIL}>: Recipient address rejected",
        esp_status=Delivery.EspStatus.BOUNCED,
    )  # fmt: skip
    Delivery.objects.create(
        mailing=appeal, supporter=bystander, status=Delivery.Status.SENT, sent_at=sent_at,
        esp_message_id="pm-bystander",
    )  # fmt: skip
    # What the workers kept of her habits, and of the bystander's.
    for supporter in (zelda, bystander):
        Engagement.objects.create(
            supporter=supporter, last_mailed_at=sent_at, last_opened_at=sent_at,
            last_acted_at=sent_at, last_engaged_at=sent_at,
        )  # fmt: skip
    TrackingEvent.objects.create(
        delivery=delivered, esp="postmark", event_id="ev-1", event_type="delivered",
        message_id="pm-0f3c9a7e-zelda", recipient=EMAIL, occurred_at=sent_at,
        description="Delivered to mx.example.org",
        payload={"RecordType": "Delivery", "Recipient": EMAIL, "MessageID": "pm-0f3c9a7e-zelda",
                 "Metadata": {"delivery_id": str(delivered.pk)}},
    )  # fmt: skip
    TrackingEvent.objects.create(
        delivery=bounced, esp="postmark", event_id="ev-2", event_type="bounced",
        reject_reason="bounced", message_id="pm-77aa-bounce", recipient=EMAIL.upper(),
        occurred_at=sent_at, description=f"The address {EMAIL} does not exist",
        payload={"RecordType": "Bounce", "Email": EMAIL, "Details": f"smtp; 550 <{EMAIL}>"},
    )  # fmt: skip
    # A test send's event: no delivery carries its metadata, but it names her.
    TrackingEvent.objects.create(
        esp="postmark", event_id="ev-3", event_type="opened", recipient=EMAIL.title(),
        occurred_at=sent_at, payload={"Recipient": EMAIL}, outcome="unknown_message",
    )  # fmt: skip
    # Only the payload names her (a forwarded complaint, say).
    TrackingEvent.objects.create(
        esp="mailgun", event_id="ev-4", event_type="complained", occurred_at=sent_at,
        payload={"message": {"headers": {"to": f"{FIRST_NAME} <{EMAIL}>"}}},
    )  # fmt: skip
    TrackingEvent.objects.create(
        esp="postmark", event_id="ev-bystander", event_type="delivered",
        recipient="bystander@example.org", occurred_at=sent_at,
        payload={"Recipient": "bystander@example.org"},
    )  # fmt: skip
    LinkClick.objects.create(
        mailing=appeal, supporter=zelda, link_index=0, url="https://rally.example/petitions/x/"
    )
    LinkClick.objects.create(
        mailing=appeal, supporter=zelda, link_index=1,
        url="https://partner.example/join?email=zelda.quartermaine%40example.org",
    )  # fmt: skip
    OutboxMessage.objects.create(
        to=EMAIL, from_email="campaigns@rally.example", subject="Please confirm your signature",
        text_body=f"Dear {FIRST_NAME}, confirm here.", headers={"To": EMAIL},
    )  # fmt: skip
    OutboxMessage.objects.create(
        to="campaigner@rally.example", from_email="campaigns@rally.example",
        subject=f"[TEST] {FIRST_NAME}, sign now", text_body=f"Sent to {EMAIL}",
    )  # fmt: skip
    OutboxMessage.objects.create(
        to="bystander@example.org", from_email="campaigns@rally.example", subject="Hello"
    )
    MailingAuditEntry.objects.create(
        mailing=appeal, mailing_name=appeal.name, action=MailingAuditEntry.Action.TEST_SENT,
        detail=f"as supporter #{zelda.pk} to {EMAIL.upper()}, campaigner@rally.example",
    )  # fmt: skip
    admin_user = User.objects.create_superuser("admin", password="x")
    LogEntry.objects.create(
        user=admin_user, content_type=ContentType.objects.get_for_model(Supporter),
        object_id=str(zelda.pk), object_repr=str(zelda), action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Postcode"]}}]',
    )  # fmt: skip
    # An import's report of rejected rows quotes the row's cells as typed.
    spreadsheet = SupporterImport.objects.create(
        original_name="list.csv", consent_source="Paper forms", consent_wording="Keep me informed."
    )
    SupporterImportRejection.objects.create(
        supporter_import=spreadsheet, line=7, reason="More cells than columns",
        raw=json.dumps([EMAIL.upper(), FIRST_NAME, LAST_NAME, POSTCODE, "extra"]),
    )  # fmt: skip
    SupporterImportRejection.objects.create(
        supporter_import=spreadsheet, line=9, reason="Not an email address",
        raw=json.dumps(["bystander at example.org", "Bea"]),
    )  # fmt: skip
    return zelda
