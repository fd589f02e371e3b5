"""CSRF: every POST Rally takes needs the token, but for the kinds that cannot carry one.

The exemptions are the one-click unsubscribe (RFC 8058: mail clients POST it with no cookie,
the signed token in its URL is the credential), the ESPs' webhooks (server to server, basic
auth or a signature) and the OSDI API (server to server, its token in a header, no session).
They are read from the URL resolver, so a new exemption fails here until it is added to the
list below, on purpose.
"""

import pytest
from django.db import connection
from django.test import Client

from tests.security.conftest import role_user
from tests.security.walk import Writes, admin_urls, public_urls, served_urls, shown_forms
from tests.security.world import world_build

pytestmark = pytest.mark.django_db

EXEMPT_VIEWS = {"supporters:unsubscribe"}
EXEMPT_NAMESPACES = {"anymail", "api"}


def is_meant_to_be_exempt(served) -> bool:
    return served.name in EXEMPT_VIEWS or served.names[0] in EXEMPT_NAMESPACES


def test_only_the_one_click_unsubscribe_the_esp_webhooks_and_the_api_are_csrf_exempt():
    exempt = {
        served.route for served in served_urls() if getattr(served.callback, "csrf_exempt", False)
    }
    expected = {served.route for served in served_urls() if is_meant_to_be_exempt(served)}
    assert exempt == expected
    assert "unsubscribe/<str:token>/" in exempt
    assert "anymail/postmark/tracking/" in exempt


def posts_without_the_token(user, paths_and_forms):
    """POST every form (else an empty body) without its CSRF token; return what came back."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    results = []
    for path, forms in paths_and_forms:
        for data in forms or [{}]:
            writes = Writes()
            with connection.execute_wrapper(writes):
                response = client.post(path, data)
            results.append((path, response, writes.found))
    return results


def test_every_admin_post_is_refused_without_the_csrf_token_and_changes_nothing(client):
    world = world_build()
    superuser = role_user("superuser")
    client.force_login(superuser)
    paths = [url.path for url in admin_urls(world)]
    forms = shown_forms(client, paths)
    refused = posts_without_the_token(superuser, [(path, forms.get(path)) for path in paths])
    for path, response, writes in refused:
        assert response.status_code == 403, path
        assert b"CSRF verification failed" in response.content, path
        assert not writes, (path, writes)


def test_every_public_post_is_refused_without_the_csrf_token_but_the_exempt_ones(client):
    world = world_build()
    paths = [path for served, path in public_urls(world) if not is_meant_to_be_exempt(served)]
    forms = shown_forms(client, paths)
    checked = [(path, forms.get(path)) for path in paths]
    assert {"/petitions/", f"/petitions/{world.petition.slug}/"} <= {path for path, _ in checked}
    assert any(forms for _, forms in checked), "no public page showed a form"
    for path, response, writes in posts_without_the_token(None, checked):
        assert response.status_code == 403, path
        assert b"CSRF verification failed" in response.content, path
        assert not writes, (path, writes)


def test_the_sign_form_with_its_token_is_taken(client):
    """The refusals above are CSRF's: the same form, token and all, signs."""
    world = world_build()
    client = Client(enforce_csrf_checks=True)
    path = f"/petitions/{world.petition.slug}/"
    page = client.get(path)
    token = page.cookies["csrftoken"].value
    response = client.post(
        path,
        {"email": "new.signer@example.org", "first_name": "Ann", "last_name": "Lee",
         "country": "GB", "postcode": "", "consent": "on", "csrfmiddlewaretoken": token},
    )  # fmt: skip
    assert response.status_code == 302
    assert world.petition.signatures.filter(supporter__email="new.signer@example.org").exists()
