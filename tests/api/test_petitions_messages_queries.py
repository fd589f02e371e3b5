"""The OSDI API's petitions, signatures, messages and queries, through HTTP (the test client).

The record signature helper writes through the petition form's signing code, so these tests
check what signing stores (supporter, consent, signature, tags, confirmation email) and what
Action Network's semantics add: a new person is subscribed, a known one keeps their status
unless the request says "subscribed", an erased person's address cannot be added.
"""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from api.services.tokens import api_token_create
from campaigns.models import Signature
from mailings.models import Delivery
from mailings.reports.ledger import report_counters_rebuild
from mailings.segments import segment_count
from privacy.services import supporter_erase
from supporters.models import ConsentRecord, Segment, SegmentCondition, Supporter
from supporters.suppression import email_is_suppressed
from tests.factories import (
    DeliveryFactory,
    MailingFactory,
    PetitionFactory,
    SignatureFactory,
    SupporterFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db

ROOT = "/api/osdi/v1"
UNSUBSCRIBING = {"address": "ann.lee@example.org", "status": "unsubscribed"}
HOST = "http://testserver"


@pytest.fixture
def call(client):
    """Call the API with a token of a scope: call("GET", "petitions", scope="read").

    The path is under the API's root, or an href the API gave.
    """
    secrets = {}

    def call_api(method: str, path: str, *, body=None, scope: str = "write", raw: str = ""):
        if scope not in secrets:
            secrets[scope] = api_token_create(name=f"test-{scope}", scope=scope).secret
        data = raw or (json.dumps(body) if body is not None else "")
        path = path.removeprefix(HOST)  # an href, as the API gives it
        response = client.generic(
            method,
            path if path.startswith("/") else f"{ROOT}/{path}",
            data=data,
            content_type="application/json",
            HTTP_OSDI_API_TOKEN=secrets[scope],
        )
        assert response["Content-Type"].startswith("application/hal+json"), response.content
        return response

    return call_api


def signer(email: str = "ann.lee@example.org", **person) -> dict:
    return {
        "person": {
            "given_name": "Ann",
            "family_name": "Lee",
            "email_addresses": [{"address": email}],
            "postal_addresses": [{"postal_code": "10115", "country": "DE"}],
            **person,
        },
    }


# --- Petitions ------------------------------------------------------------------------------


def test_petitions_are_listed_with_their_count_and_links_that_end_in_their_id(call):
    petition = PetitionFactory(title="Free the journalists", target="The court")
    SignatureFactory.create_batch(2, petition=petition)
    SignatureFactory(petition=petition, confirmed_at=None)  # not counted until confirmed
    closed = PetitionFactory(is_open=False)

    page = call("GET", "petitions").json()

    assert page["total_records"] == 2
    listed = {item["identifiers"][0]: item for item in page["_embedded"]["osdi:petitions"]}
    item = listed[f"rally:{petition.pk}"]
    assert item["title"] == "Free the journalists"
    assert item["target"] == [{"name": "The court"}]
    assert item["total_signatures"] == 2
    assert item["rally:is_open"] is True and listed[f"rally:{closed.pk}"]["rally:is_open"] is False
    href = item["_links"]["self"]["href"]
    assert href == f"{HOST}{ROOT}/petitions/{petition.pk}"
    assert item["_links"]["osdi:signatures"]["href"] == f"{href}/signatures"
    assert item["_links"]["osdi:record_signature_helper"]["href"] == f"{href}/signatures"
    # The same resource, read by its href, with and without a trailing slash.
    assert call("GET", href).json() == item
    assert call("GET", f"{href}/").json() == item


@pytest.mark.parametrize("petition_id", ["999999", "not-a-number", "1.5"])
def test_a_petition_that_does_not_exist_is_a_json_404(call, petition_id):
    response = call("GET", f"petitions/{petition_id}")
    assert response.status_code == 404 and "error" in response.json()


# --- The record signature helper -----------------------------------------------------------


def test_the_helper_signs_as_the_form_does_and_subscribes_a_new_person(
    call, django_capture_on_commit_callbacks
):
    petition = PetitionFactory()
    TagFactory(name="volunteer")
    with django_capture_on_commit_callbacks(execute=True):
        response = call(
            "POST",
            f"petitions/{petition.pk}/signatures",
            body={
                **signer(languages_spoken=["ru"]),
                "add_tags": ["volunteer", "partner"],
                "action_network:referrer_data": {
                    "source": "partner-site",
                    "website": "https://partner.example/join",
                },
            },
        )

    assert response.status_code == 201, response.json()
    signature = Signature.objects.select_related("supporter").get()
    supporter = signature.supporter
    assert (supporter.email, supporter.first_name, supporter.last_name) == (
        "ann.lee@example.org", "Ann", "Lee",
    )  # fmt: skip
    assert (str(supporter.country), supporter.postcode, supporter.language) == ("DE", "10115", "ru")
    assert supporter.status == Supporter.Status.SUBSCRIBED
    assert signature.confirmed_at is not None and signature.consented
    assert signature.source == "partner-site"
    consent = ConsentRecord.objects.get(supporter=supporter)
    assert "OSDI API" in consent.wording and consent.source_url == "https://partner.example/join"
    # Tags are matched by name, and made when missing, as by the person signup helper.
    assert sorted(supporter.tags.values_list("name", flat=True)) == ["partner", "volunteer"]
    body = response.json()
    assert body["add_tags"] == ["volunteer", "partner"]
    assert body["identifiers"] == [f"rally:{signature.pk}"]
    assert body["action_network:referrer_data"] == {"source": "partner-site"}
    assert body["_links"]["self"]["href"].endswith(
        f"/petitions/{petition.pk}/signatures/{signature.pk}"
    )
    assert body["_links"]["osdi:person"]["href"] == f"{HOST}{ROOT}/people/{supporter.uuid}"
    # The person's link leads to them, and their signatures list this one.
    person_signatures = call("GET", f"people/{supporter.uuid}/signatures").json()
    assert [item["identifiers"] for item in person_signatures["_embedded"]["osdi:signatures"]] == [
        [f"rally:{signature.pk}"]
    ]
    # The petition's public count took it (counted on commit, as for the form).
    assert call("GET", f"petitions/{petition.pk}").json()["total_signatures"] == 1


def test_signing_again_changes_nothing_and_answers_200(call):
    petition = PetitionFactory()
    first = call("POST", f"petitions/{petition.pk}/signatures", body=signer())
    again = call("POST", f"petitions/{petition.pk}/signatures", body=signer("ANN.LEE@example.org"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["identifiers"] == first.json()["identifiers"]
    assert Signature.objects.count() == 1 and Supporter.objects.count() == 1


@pytest.mark.parametrize(
    ("status", "given", "expected"),
    [
        # A known person keeps their status unless the request says "subscribed".
        (Supporter.Status.UNSUBSCRIBED, None, Supporter.Status.UNSUBSCRIBED),
        (Supporter.Status.UNSUBSCRIBED, "subscribed", Supporter.Status.SUBSCRIBED),
        # An explicit "subscribed" brings back any who left, as the signup helper does.
        (Supporter.Status.BOUNCED, None, Supporter.Status.BOUNCED),
        (Supporter.Status.BOUNCED, "subscribed", Supporter.Status.SUBSCRIBED),
        (Supporter.Status.COMPLAINED, "subscribed", Supporter.Status.SUBSCRIBED),
        (Supporter.Status.SUNSET, "subscribed", Supporter.Status.SUBSCRIBED),
        (Supporter.Status.SUBSCRIBED, None, Supporter.Status.SUBSCRIBED),
    ],
)
def test_a_known_person_is_subscribed_only_when_the_request_says_so(call, status, given, expected):
    supporter = SupporterFactory(email="ann.lee@example.org", status=status, first_name="")
    petition = PetitionFactory()
    address = {"address": supporter.email, **({"status": given} if given else {})}
    body = signer()
    body["person"]["email_addresses"] = [address]

    response = call("POST", f"petitions/{petition.pk}/signatures", body=body)

    assert response.status_code == 201, response.json()
    supporter.refresh_from_db()
    assert supporter.status == expected
    assert supporter.first_name == "Ann"  # a blank is filled, as the form does
    assert Signature.objects.get().consented == (given == "subscribed")


def test_an_erased_persons_address_cannot_be_added_by_a_signature(call):
    erased = SupporterFactory(email="ann.lee@example.org")
    supporter_erase(supporter_id=erased.pk)
    assert email_is_suppressed("ann.lee@example.org")
    petition = PetitionFactory()
    body = signer()
    body["person"]["email_addresses"] = [{"address": "ann.lee@example.org", "status": "subscribed"}]

    response = call("POST", f"petitions/{petition.pk}/signatures", body=body)

    assert response.status_code == 410 and "erased" in response.json()["error"]
    assert not Signature.objects.exists()
    assert list(Supporter.objects.values_list("status", flat=True)) == ["erased"]


def test_a_petition_that_asks_for_confirmation_sends_the_email_and_waits(
    call, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the confirmation email lands in mail.outbox
    petition = PetitionFactory(requires_confirmation=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = call("POST", f"petitions/{petition.pk}/signatures", body=signer())

    assert response.status_code == 201
    assert response.json()["rally:confirmed"] is False
    signature = Signature.objects.select_related("supporter").get()
    assert signature.confirmed_at is None
    # Consent waits for the confirmation: nobody is mailed at an address not proved theirs.
    assert signature.supporter.status == Supporter.Status.UNSUBSCRIBED
    (message,) = mail.outbox
    assert message.to == ["ann.lee@example.org"]
    assert message.subject.startswith("Please confirm your signature")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
        (json.dumps({}), "needs a person"),
        (json.dumps({"person": {"given_name": "Ann"}}), "needs an email address"),
        (json.dumps(signer("not-an-email")), "is not an email address"),
        (json.dumps({**signer(), "colour": "red"}), "unknown field"),
        (json.dumps(signer(shoe_size=44)), "unknown field"),
        (json.dumps({**signer(), "add_tags": "volunteer"}), "add_tags must be a list"),
        (json.dumps(signer(given_name="x" * 101)), "longer than 100"),
        (json.dumps(signer(given_name="A\u0000nn")), "NUL"),
        (json.dumps(signer(email_addresses=[UNSUBSCRIBING])), "status"),
        (
            json.dumps(signer(postal_addresses=[{"country": "ZZ"}])),
            "not a country code",
        ),
        (json.dumps({**signer(), "referrer_data": "site"}), "referrer_data must be an object"),
    ],
)
def test_bad_input_is_a_clear_400_and_stores_nothing(call, raw, message):
    petition = PetitionFactory()
    response = call("POST", f"petitions/{petition.pk}/signatures", raw=raw)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Signature.objects.exists() and not Supporter.objects.exists()


def test_a_closed_petition_is_a_409_and_stores_nothing(call):
    petition = PetitionFactory(is_open=False)
    response = call("POST", f"petitions/{petition.pk}/signatures", body=signer())
    assert response.status_code == 409 and "closed" in response.json()["error"]
    assert not Signature.objects.exists() and not Supporter.objects.exists()


def test_a_helpers_token_may_sign_but_not_read_and_a_read_token_may_not_sign(call):
    petition = PetitionFactory()
    path = f"petitions/{petition.pk}/signatures"
    assert call("POST", path, body=signer(), scope="helpers").status_code == 201
    assert call("GET", path, scope="helpers").status_code == 403
    assert call("POST", path, body=signer("bob@example.org"), scope="read").status_code == 403
    assert call("GET", path, scope="read").status_code == 200
    assert Signature.objects.count() == 1


# --- Signatures and erasure -----------------------------------------------------------------


def test_an_erased_persons_signature_is_left_out_of_lists_and_answers_410(call):
    petition = PetitionFactory()
    kept = SignatureFactory(petition=petition)
    gone = SignatureFactory(petition=petition)
    gone_uuid = gone.supporter.uuid
    supporter_erase(supporter_id=gone.supporter_id)

    page = call("GET", f"petitions/{petition.pk}/signatures").json()
    assert page["total_records"] == 1
    assert [item["identifiers"] for item in page["_embedded"]["osdi:signatures"]] == [
        [f"rally:{kept.pk}"]
    ]
    assert "@" not in json.dumps(page)  # no address in a signature at all
    assert call("GET", f"petitions/{petition.pk}/signatures/{gone.pk}").status_code == 410
    assert call("GET", f"people/{gone_uuid}/signatures").status_code == 410
    kept_one = call("GET", f"petitions/{petition.pk}/signatures/{kept.pk}").json()
    assert kept_one["action_network:person_id"] == str(kept.supporter.uuid)


def test_a_signature_of_another_petition_or_person_is_not_found(call):
    signature = SignatureFactory()
    other = PetitionFactory()
    assert call("GET", f"petitions/{other.pk}/signatures/{signature.pk}").status_code == 404
    assert call("GET", "people/not-a-uuid/signatures").status_code == 404
    assert call("GET", "people/00000000-0000-0000-0000-000000000000/signatures").status_code == 404


def test_signatures_filter_by_modified_date(call):
    petition = PetitionFactory()
    old = SignatureFactory(petition=petition)
    new = SignatureFactory(petition=petition)
    Signature.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=10),
        confirmed_at=timezone.now() - timedelta(days=10),
    )
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def listed(expression: str) -> list:
        response = call("GET", f"petitions/{petition.pk}/signatures?filter={expression}")
        assert response.status_code == 200, response.json()
        return [item["identifiers"][0] for item in response.json()["_embedded"]["osdi:signatures"]]

    assert listed(f"modified_date gt '{since}'") == [f"rally:{new.pk}"]
    assert listed(f"modified_date lt '{since}'") == [f"rally:{old.pk}"]


# --- Messages -------------------------------------------------------------------------------


def test_a_message_carries_the_statistics_its_report_counted(call):
    segment = Segment.objects.create(name="Everyone")
    mailing = MailingFactory(name="March appeal", subject="Sign now", audience_segment=segment)
    now = timezone.now()
    DeliveryFactory.create_batch(3, mailing=mailing)
    DeliveryFactory(mailing=mailing, opened_at=now)
    DeliveryFactory(mailing=mailing, opened_at=now, clicked_at=now)
    DeliveryFactory(mailing=mailing, esp_status=Delivery.EspStatus.BOUNCED, esp_status_at=now)
    DeliveryFactory(mailing=mailing, esp_status=Delivery.EspStatus.COMPLAINED, esp_status_at=now)
    DeliveryFactory(mailing=mailing, unsubscribed_at=now)
    DeliveryFactory(mailing=mailing, status=Delivery.Status.SKIPPED, sent_at=None)
    SignatureFactory.create_batch(2, mailing=mailing)
    report_counters_rebuild(mailing_id=mailing.pk)
    MailingFactory(name="Untouched draft")

    page = call("GET", "messages").json()

    assert page["total_records"] == 2
    message = next(
        item for item in page["_embedded"]["osdi:messages"] if item["name"] == "March appeal"
    )
    assert message["statistics"] == {
        "sent": 8,
        "opened": 2,
        "clicked": 1,
        "actions": 2,
        "unsubscribed": 2,  # the unsubscribe and the complaint
        "bounced": 1,
        "spam_reports": 1,
    }
    assert (message["subject"], message["from"], message["origin_system"]) == (
        "Sign now", "Rally campaigns", "Rally",
    )  # fmt: skip
    assert message["status"] == "draft"
    query_href = f"{HOST}{ROOT}/queries/{segment.pk}"
    assert message["targets"] == [{"href": query_href}]
    href = message["_links"]["self"]["href"]
    assert href == f"{HOST}{ROOT}/messages/{mailing.pk}"
    assert call("GET", href).json() == message
    draft = next(item for item in page["_embedded"]["osdi:messages"] if item is not message)
    assert set(draft["statistics"].values()) == {0}


# --- Queries --------------------------------------------------------------------------------


def test_a_query_is_a_saved_segment_with_its_count(call):
    volunteers = TagFactory(name="volunteer")
    tagged = SupporterFactory.create_batch(3)
    for supporter in tagged:
        supporter.tags.add(volunteers)
    tagged[0].status = Supporter.Status.UNSUBSCRIBED  # not mailable: not counted
    tagged[0].save(update_fields=["status"])
    SupporterFactory.create_batch(2)
    segment = Segment.objects.create(name="Volunteers", description="Who helps")
    SegmentCondition.objects.create(
        segment=segment, kind=SegmentCondition.Kind.HAS_TAG, tag=volunteers
    )
    Segment.objects.create(name="Everyone")

    page = call("GET", "queries").json()

    assert page["total_records"] == 2
    everyone, volunteers_query = page["_embedded"]["osdi:queries"]  # by name
    assert volunteers_query["name"] == "Volunteers"
    assert volunteers_query["count"] == 2 == segment_count(segment)
    assert everyone["count"] == 4
    href = volunteers_query["_links"]["self"]["href"]
    assert href == f"{HOST}{ROOT}/queries/{segment.pk}"
    assert call("GET", href).json()["count"] == 2
    assert call("GET", "queries/12345").status_code == 404


def test_queries_and_messages_are_read_only(call):
    segment = Segment.objects.create(name="Everyone")
    mailing = MailingFactory()
    for path in ("queries", f"queries/{segment.pk}", "messages", f"messages/{mailing.pk}"):
        for method in ("POST", "PUT", "DELETE"):
            response = call(method, path, body={"name": "x"})
            assert response.status_code == 405, (method, path)
    assert Segment.objects.count() == 1
