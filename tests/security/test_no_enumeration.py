"""No page tells a stranger whether an address is a supporter's.

For each page that takes an address (or acts for one), a known and an unknown one get the same
status and the same body (the CSRF token aside), and the server runs the same statements to
answer, in number and shape: a timing difference would need a different code path, and the
same statements leave none to measure. Rally has no public erasure page: erasure is the admin's
(tests/privacy/).
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from supporters.models import Supporter
from supporters.tokens import make_unsubscribe_token
from tests.factories import PetitionFactory, SignatureFactory, SupporterFactory

pytestmark = pytest.mark.django_db

_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+\b|\"s\d+_x\d+\"")
_CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def answer(client, path, data, *, token: str = ""):
    """POST and return (status, Location, body without CSRF token, statement shapes).

    The `token` in the path is blanked out of the body, where the page's own links repeat it.
    """
    with CaptureQueriesContext(connection) as queries:
        response = client.post(path, data)
    shapes = [_LITERALS.sub("?", query["sql"]) for query in queries.captured_queries]
    body = _CSRF.sub(b"", response.content)
    if token:
        body = body.replace(token.encode(), b"<token>")
    return response.status_code, response.get("Location"), body, shapes


def sign_data(email, first_name="Ann"):
    return {"email": email, "first_name": first_name, "last_name": "Lee", "country": "GB",
            "postcode": "", "consent": "on"}  # fmt: skip


@pytest.mark.parametrize("requires_confirmation", [False, True])
def test_signing_answers_the_same_for_a_known_and_an_unknown_address(client, requires_confirmation):
    petition = PetitionFactory(requires_confirmation=requires_confirmation)
    known = SupporterFactory(email="known@example.org")
    SignatureFactory(petition=PetitionFactory(), supporter=known)
    path = f"/petitions/{petition.slug}/"
    # The first signing of each warms the process's caches, so that both answers compared
    # below are a second signing's.
    client.post(path, sign_data("warm@example.org"))
    first_known = answer(client, path, sign_data("known@example.org"))
    first_unknown = answer(client, path, sign_data("unknown@example.org"))
    assert first_known[:3] == first_unknown[:3]
    if connection.vendor == "postgresql":
        # Production's set-based writer runs one statement for both; SQLite's portable writer,
        # for a laptop, updates a known supporter where it inserts a new one.
        assert first_known[3] == first_unknown[3]
    # Signing again, as someone probing would, answers as the first time did.
    again_known = answer(client, path, sign_data("known@example.org"))
    assert again_known[:3] == first_known[:3]


def test_asking_for_the_confirmation_again_answers_the_same_for_any_address(client):
    petition = PetitionFactory(requires_confirmation=True)
    SignatureFactory(
        petition=petition, supporter=SupporterFactory(email="signed@example.org"),
        confirmed_at=None,
    )  # fmt: skip
    SupporterFactory(email="supporter@example.org")
    path = f"/petitions/{petition.slug}/confirm-again/"
    answers = {
        email: answer(client, path, {"email": email})
        for email in ("signed@example.org", "supporter@example.org", "stranger@example.org")
    }
    statuses_and_bodies = {result[:3] for result in answers.values()}
    assert len(statuses_and_bodies) == 1
    assert next(iter(statuses_and_bodies))[0] == 200
    # The signer's address is looked up as the stranger's is; only the email queued differs,
    # after the transaction, and it goes to the address's owner, not to who asked.
    assert answers["signed@example.org"][3] == answers["stranger@example.org"][3]


def test_unsubscribing_answers_the_same_whether_or_not_the_supporter_was_subscribed(client):
    subscribed = SupporterFactory()
    left = SupporterFactory(status=Supporter.Status.UNSUBSCRIBED)
    erased = SupporterFactory(status=Supporter.Status.ERASED, email="erased@invalid")
    tokens = [make_unsubscribe_token(supporter.pk) for supporter in (subscribed, left, erased)]
    answers = [answer(client, f"/unsubscribe/{token}/", {}, token=token) for token in tokens]
    assert len({result[:3] for result in answers}) == 1
    assert answers[0][0] == 200
    gone = make_unsubscribe_token(999_999)
    # A token names an id, never an address, and cannot be made without the key: a signed
    # token of nobody is Rally's own doing, and answers as any other does.
    assert answer(client, f"/unsubscribe/{gone}/", {}, token=gone)[:3] == answers[0][:3]
