"""Both signing writers leave identical rows for the same sign requests.

Each scenario runs once per writer this database has (PostgreSQL: the set-based writer and
the portable one; SQLite: the portable one), each time from the same starting rows, through the
public ways in (the sign form over HTTP, personal links, the confirmation link, and
`signatures_record` for a batch). Every row the writers touch is compared by natural keys
(emails, slugs), with the follow-ups they queue (counts, confirmation emails). Each scenario
also checks the facts its name promises, so that on SQLite it checks the portable writer alone.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.counters import petition_count
from campaigns.links import make_confirmation_token, make_petition_token
from campaigns.models import Petition, Signature
from campaigns.signing import SignatureInput, SignatureRequest, record, signatures_record
from campaigns.signing.portable import signatures_write_portable
from campaigns.signing.postgres import signatures_write_postgres
from supporters.models import ConsentRecord, Engagement, Supporter
from tests.factories import MailingFactory, PetitionFactory, SignatureFactory, SupporterFactory
from tests.processes import purge_test_redis

pytestmark = pytest.mark.django_db


def signatures_write_postgres_pooled(requests):
    """The PostgreSQL writer as it runs behind PgBouncer: the whole statement, not prepared."""
    settings_dict = connection.settings_dict
    pooled = settings_dict.get("DISABLE_SERVER_SIDE_CURSORS", False)
    settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
    try:
        return signatures_write_postgres(requests)
    finally:
        settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = pooled


WRITERS = {
    "portable": signatures_write_portable,
    "postgres": signatures_write_postgres,
    "postgres_pooled": signatures_write_postgres_pooled,
}


def writers_here() -> list[str]:
    if connection.vendor == "postgresql":
        return ["portable", "postgres", "postgres_pooled"]
    return ["portable"]


FORM = {
    "first_name": "Ann",
    "last_name": "Lee",
    "country": "GB",
    "postcode": "N1 9GU",
    "consent": "on",
}


@dataclass
class World:
    """The rows every scenario starts from, made afresh for each writer."""

    client: object
    open: Petition
    confirming: Petition
    second: Petition
    mailing: object

    def sign(self, petition, email, **changes):
        data = {**FORM, "email": email, **changes}
        data = {key: value for key, value in data.items() if value is not None}
        return self.client.post(f"/petitions/{petition.slug}/", data)

    def sign_by_link(self, petition, email):
        supporter = Supporter.objects.get(email=email)
        token = make_petition_token(
            supporter_id=supporter.pk, mailing_id=self.mailing.pk, petition_id=petition.pk
        )
        return self.client.post(f"/petitions/{petition.slug}/", {"t": token})

    def confirm(self, petition, email):
        signature = Signature.objects.get(petition=petition, supporter__email=email)
        token = make_confirmation_token(signature_id=signature.pk)
        return self.client.post(f"/petitions/{petition.slug}/confirm/{token}/")


def make_world(client) -> World:
    open_petition = PetitionFactory(slug="open", title="Open")
    confirming = PetitionFactory(slug="confirming", title="Confirming", requires_confirmation=True)
    second = PetitionFactory(slug="second", title="Second")
    known = {"first_name": "Real", "last_name": "Name", "postcode": ""}
    SupporterFactory(email="known@example.org", **known)
    SupporterFactory(email="left@example.org", status=Supporter.Status.UNSUBSCRIBED, **known)
    SupporterFactory(email="bounced@example.org", status=Supporter.Status.BOUNCED, **known)
    SupporterFactory(email="invited@example.org", **known)
    mailing = MailingFactory(name="Appeal", petition=confirming, campaign=confirming.campaign)
    # Earlier signatures: one unconfirmed with consent on the confirming petition.
    SignatureFactory(
        petition=confirming,
        supporter=SupporterFactory(
            email="pending@example.org", status=Supporter.Status.UNSUBSCRIBED, **known
        ),
        confirmed_at=None,
        consented=True,
    )
    # Taken off the list by the sunset flow after a year of silence and a dozen mailings.
    year_ago = timezone.now() - timedelta(days=365)
    silent = SupporterFactory(email="silent@example.org", status=Supporter.Status.SUNSET, **known)
    Engagement.objects.create(
        supporter=silent,
        last_mailed_at=year_ago,
        last_engaged_at=year_ago,
        mailings_since_engaged=12,
    )
    # As if untouched since created, so that a later change shows as `touched`.
    Supporter.objects.update(updated_at=F("created_at"))
    return World(client, open_petition, confirming, second, mailing)


def snapshot(world: World, responses: list) -> dict:
    """Every row the writers touch, by natural keys, and what they queued."""
    supporters = {
        row["email"]: {
            **{key: value for key, value in row.items() if not key.endswith("_at")},
            "unsubscribed": row["unsubscribed_at"] is not None,
            "touched": row["updated_at"] > row["created_at"],
        }
        for row in Supporter.objects.values(
            "email",
            "first_name",
            "last_name",
            "country",
            "postcode",
            "language",
            "status",
            "source",
            "unsubscribed_at",
            "created_at",
            "updated_at",
        )
    }
    consents = sorted(
        ConsentRecord.objects.values_list(
            "supporter__email", "wording", "source_url", "ip_truncated"
        )
    )
    signatures = sorted(
        (
            slug,
            email,
            confirmed_at is not None,
            mailing or "",
            source,
            consented,
        )
        for slug, email, confirmed_at, mailing, source, consented in Signature.objects.values_list(
            "petition__slug",
            "supporter__email",
            "confirmed_at",
            "mailing__name",
            "source",
            "consented",
        )
    )
    counts = {
        # The held count, as bumped after each commit (run_scenario made Redis hold it).
        petition.slug: petition_count(petition.pk)
        for petition in (world.open, world.confirming, world.second)
    }
    # What each writer records of who acted: times differ by writer, never what they say.
    engagement = {
        email: {
            "mailed": last_mailed_at is not None,
            "acted": last_acted_at is not None,
            "engaged_by_acting": last_acted_at is not None and last_engaged_at == last_acted_at,
            "mailings_since_engaged": mailings_since_engaged,
        }
        for email, last_mailed_at, last_acted_at, last_engaged_at, mailings_since_engaged in (
            Engagement.objects.values_list(
                "supporter__email",
                "last_mailed_at",
                "last_acted_at",
                "last_engaged_at",
                "mailings_since_engaged",
            )
        )
    }
    emails = sorted((message.to[0], message.subject) for message in mail.outbox)
    answers = [(response.status_code, response.get("Location", "")) for response in responses]
    return {
        "supporters": supporters,
        "consents": consents,
        "signatures": signatures,
        "engagement": engagement,
        "counts": counts,
        "emails": emails,
        "answers": answers,
    }


def differences(expected: dict, actual: dict) -> list:
    """What differs between two snapshots, item by item, for a readable failure."""
    found = []
    for section, rows in expected.items():
        if section == "supporters":
            for email in rows.keys() | actual[section].keys():
                if rows.get(email) != actual[section].get(email):
                    found.append((email, rows.get(email), actual[section].get(email)))
        elif rows != actual[section]:
            found.append((section, rows, actual[section]))
    return found


@pytest.fixture
def run_scenario(client, monkeypatch, settings, django_capture_on_commit_callbacks):
    """Run a scenario with each writer from the same rows; return each writer's snapshot."""
    settings.CELERY_TASK_ALWAYS_EAGER = True  # confirmation emails land in mail.outbox
    settings.RALLY_SIGN_LIMIT_PER_EMAIL = 1000

    def run(scenario, *, batched: bool = False) -> dict[str, dict]:
        snapshots = {}
        for name in writers_here():
            monkeypatch.setattr(record, "signature_writer", lambda name=name: WRITERS[name])
            purge_test_redis()
            mail.outbox.clear()
            with transaction.atomic():
                world = make_world(client)
                for petition in (world.open, world.confirming, world.second):
                    petition_count(petition.pk)  # the counts are held, so bumps show
                with django_capture_on_commit_callbacks(execute=True):
                    responses = scenario(world) or []
                snapshots[name] = snapshot(world, responses)
                transaction.set_rollback(True)
            if batched:
                # Within one batch the set-based writer writes each row once, the portable one
                # row after row: when a row last changed may differ, never what it holds.
                for row in snapshots[name]["supporters"].values():
                    row.pop("touched")
        first = snapshots["portable"]
        for name, rows in snapshots.items():
            assert rows == first, f"the {name} writer differs: {differences(first, rows)}"
        return first

    return run


def test_a_new_signer_with_and_without_consent(run_scenario):
    rows = run_scenario(
        lambda world: [
            world.sign(world.open, "new@example.org"),
            world.sign(world.open, "quiet@example.org", consent=None),
        ]
    )
    assert rows["supporters"]["new@example.org"]["status"] == "subscribed"
    assert rows["supporters"]["quiet@example.org"]["status"] == "unsubscribed"
    assert rows["counts"]["open"] == 2
    assert [answer[0] for answer in rows["answers"]] == [302, 302]


def test_a_returning_signer_fills_blanks_and_overwrites_nothing(run_scenario):
    rows = run_scenario(
        lambda world: [
            world.sign(world.open, "known@example.org", first_name="Fake"),
            world.sign(world.second, "known@example.org", first_name="Fake"),
            world.sign(world.open, "known@example.org"),  # again: a harmless no-op
        ]
    )
    known = rows["supporters"]["known@example.org"]
    assert (known["first_name"], known["postcode"], known["touched"]) == ("Real", "N1 9GU", True)
    assert rows["counts"] == {"open": 1, "confirming": 0, "second": 1}


def test_unsubscribed_signers_with_and_without_consent(run_scenario):
    rows = run_scenario(
        lambda world: [
            world.sign(world.open, "left@example.org", consent=None),
            world.sign(world.second, "bounced@example.org"),
        ]
    )
    assert rows["supporters"]["left@example.org"]["status"] == "unsubscribed"
    assert rows["supporters"]["bounced@example.org"]["status"] == "bounced"
    rows = run_scenario(lambda world: [world.sign(world.open, "left@example.org")])
    left = rows["supporters"]["left@example.org"]
    assert (left["status"], left["unsubscribed"]) == ("subscribed", False)


def test_a_fresh_signature_with_consent_brings_back_a_sunset_supporter(run_scenario):
    rows = run_scenario(lambda world: [world.sign(world.open, "silent@example.org", consent=None)])
    assert rows["supporters"]["silent@example.org"]["status"] == "sunset"
    # Signing is engaging, consent or not: the count of unanswered mailings starts again.
    assert rows["engagement"]["silent@example.org"] == {
        "mailed": True,
        "acted": True,
        "engaged_by_acting": True,
        "mailings_since_engaged": 0,
    }
    rows = run_scenario(lambda world: [world.sign(world.open, "silent@example.org")])
    assert rows["supporters"]["silent@example.org"]["status"] == "subscribed"


def test_every_signer_acted_and_a_closed_petition_records_no_engagement(run_scenario):
    def scenario(world):
        Petition.objects.filter(pk=world.second.pk).update(is_open=False)
        return [
            world.sign(world.open, "new@example.org"),
            world.sign(world.open, "known@example.org", consent=None),
            world.sign(world.second, "late@example.org"),
        ]

    rows = run_scenario(scenario)
    assert set(rows["engagement"]) == {"new@example.org", "known@example.org", "silent@example.org"}
    assert rows["engagement"]["new@example.org"] == {
        "mailed": False,
        "acted": True,
        "engaged_by_acting": True,
        "mailings_since_engaged": 0,
    }


def test_double_opt_in_subscribes_and_counts_only_once_confirmed(run_scenario):
    def scenario(world):
        responses = [
            world.sign(world.confirming, "careful@example.org"),
            world.sign(world.confirming, "left@example.org"),
        ]
        assert Supporter.objects.get(email="careful@example.org").status == "unsubscribed"
        responses.append(world.confirm(world.confirming, "careful@example.org"))
        return responses

    rows = run_scenario(scenario)
    assert rows["supporters"]["careful@example.org"]["status"] == "subscribed"
    assert rows["supporters"]["left@example.org"]["status"] == "unsubscribed"
    # Emails go after the commit, when careful@ had confirmed already: only left@ is asked.
    assert [email for email, _ in rows["emails"]] == ["left@example.org"]
    assert rows["counts"]["confirming"] == 1


def test_a_personal_link_confirms_an_earlier_signature_and_its_consent(run_scenario):
    rows = run_scenario(
        lambda world: [
            world.sign_by_link(world.confirming, "pending@example.org"),
            world.sign_by_link(world.open, "invited@example.org"),
        ]
    )
    assert ("confirming", "pending@example.org", True, "", "", True) in rows["signatures"]
    assert ("open", "invited@example.org", True, "Appeal", "mailing", False) in rows["signatures"]
    assert rows["supporters"]["pending@example.org"]["status"] == "subscribed"
    assert rows["counts"] == {"open": 1, "confirming": 1, "second": 0}
    assert rows["emails"] == []


def test_a_signing_that_needs_no_confirmation_confirms_an_earlier_one(run_scenario):
    def scenario(world):
        Petition.objects.filter(pk=world.confirming.pk).update(requires_confirmation=False)
        return [world.sign(world.confirming, "pending@example.org")]

    rows = run_scenario(scenario)
    assert ("confirming", "pending@example.org", True, "", "", True) in rows["signatures"]
    assert rows["counts"]["confirming"] == 1


def test_the_honeypot_and_a_closed_petition_store_nothing(run_scenario):
    def scenario(world):
        responses = [world.sign(world.open, "bot@example.org", website="http://spam.example")]
        Petition.objects.filter(pk=world.second.pk).update(is_open=False)
        responses.append(world.sign(world.second, "late@example.org"))
        # Closed after the page read it: the writer itself finds it closed.
        signer = SignatureInput(email="later@example.org", first_name="A", last_name="B")
        outcomes = signatures_record([SignatureRequest(petition_id=world.second.pk, signer=signer)])
        assert outcomes[0].closed
        return responses

    rows = run_scenario(scenario)
    assert set(rows["supporters"]).isdisjoint(
        {"bot@example.org", "late@example.org", "later@example.org"}
    )
    assert [answer[0] for answer in rows["answers"]] == [302, 409]


def test_a_batch_means_the_same_requests_one_after_another(run_scenario):
    def request(world, petition, email, *, consent, confirmed=False, **signer):
        details = {"first_name": "Bo", "last_name": "", "postcode": "", **signer}
        return SignatureRequest(
            confirmed=confirmed,
            petition_id=petition.pk,
            signer=SignatureInput(
                email=email,
                consent=consent,
                consent_wording="I agree" if consent else "",
                language="ru",
                **details,
            ),
            source_url="http://testserver/petitions/",
            ip="203.0.113.0",
            supporter_source=petition.slug,
        )

    def scenario(world):
        signatures_record(
            [
                request(world, world.open, "twice@example.org", consent=False),
                request(world, world.open, "twice@example.org", consent=True, last_name="Ko"),
                request(world, world.second, "twice@example.org", consent=False, postcode="E1"),
                request(world, world.open, "left@example.org", consent=False),
                request(world, world.second, "left@example.org", consent=True),
                request(world, world.confirming, "fresh@example.org", consent=True),
                request(world, world.open, " Upper@Example.ORG ", consent=True),
            ]
        )
        # The form and a personal link of one signer at the same moment.
        signatures_record(
            [
                request(world, world.confirming, "mixed@example.org", consent=True),
                request(
                    world, world.confirming, "mixed@example.org", consent=False, confirmed=True
                ),
            ]
        )

    rows = run_scenario(scenario, batched=True)
    twice = rows["supporters"]["twice@example.org"]
    assert (twice["last_name"], twice["postcode"], twice["status"]) == ("Ko", "E1", "subscribed")
    assert rows["supporters"]["left@example.org"]["status"] == "subscribed"
    assert rows["supporters"]["fresh@example.org"]["status"] == "unsubscribed"
    assert rows["supporters"]["upper@example.org"]["status"] == "subscribed"
    assert rows["supporters"]["mixed@example.org"]["status"] == "subscribed"
    assert rows["counts"] == {"open": 3, "confirming": 1, "second": 2}
    assert [email for email, _ in rows["emails"]] == ["fresh@example.org"]
