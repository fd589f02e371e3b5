"""Abuse on the public petition pages: rate limits, the optional captcha, a burst of the same
signature at once.

The test client talks to the real URL configuration, the test database and the test Redis.
"""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from campaigns.models import Signature
from supporters.models import Supporter
from tests.campaigns.test_sign import VALID, sign
from tests.factories import PetitionFactory

pytestmark = pytest.mark.django_db


def sign_from(client, petition, ip: str, **changes):
    return client.post(f"/petitions/{petition.slug}/", {**VALID, **changes}, REMOTE_ADDR=ip)


# --- Abuse ----------------------------------------------------------------------------------


def test_too_many_signatures_from_one_ip_get_a_friendly_429(client, settings):
    settings.RALLY_SIGN_LIMIT_PER_IP = 3
    petition = PetitionFactory()
    statuses = [sign(client, petition, email=f"n{n}@example.org").status_code for n in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    response = sign(client, petition, email="late@example.org")
    assert "Please wait a moment" in response.content.decode()
    assert Signature.objects.count() == 3
    # Another address is not limited by this one's flood.
    other = sign_from(client, petition, "10.1.2.3", email="else@example.org")
    assert other.status_code == 302


def test_too_many_attempts_for_one_email_get_a_429(client, settings):
    settings.RALLY_SIGN_LIMIT_PER_EMAIL = 2
    petition = PetitionFactory()
    statuses = [sign_from(client, petition, f"10.0.0.{n}").status_code for n in range(1, 5)]
    assert statuses == [302, 302, 429, 429]


def test_a_rate_limit_window_opens_at_the_first_attempt_and_expires(client, settings):
    from campaigns.abuse import email_limit, rate_limit_hit
    from config.redis import redis_client

    settings.RALLY_SIGN_LIMIT_PER_EMAIL = 2
    window = email_limit().window_seconds
    assert not rate_limit_hit(email_limit(), "window@example.org")
    (key,) = redis_client().keys("rally:limit:email:*")
    assert b"window@example.org" not in key  # hashed, never in clear
    assert 0 < redis_client().ttl(key) <= window
    # A later attempt does not push the window out; it only counts.
    redis_client().expire(key, 5)
    assert not rate_limit_hit(email_limit(), "window@example.org")
    assert redis_client().ttl(key) <= 5
    assert rate_limit_hit(email_limit(), "window@example.org")
    # Once the window has passed, the address may try again.
    redis_client().delete(key)
    assert not rate_limit_hit(email_limit(), "window@example.org")


class FakeSiteverify(BaseHTTPRequestHandler):
    """Answers like Turnstile's siteverify: success only for the response "good-token"."""

    def do_POST(self):  # noqa: N802 -- http.server's method name
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        ok = "response=good-token" in body and "secret=shh" in body
        answer = b'{"success": true}' if ok else b'{"success": false}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def turnstile(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSiteverify)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.RALLY_CAPTCHA_PROVIDER = "turnstile"
    settings.RALLY_CAPTCHA_SITE_KEY = "site-key"
    settings.RALLY_CAPTCHA_SECRET_KEY = "shh"
    settings.RALLY_CAPTCHA_VERIFY_URL = f"http://127.0.0.1:{server.server_port}/siteverify"
    yield
    server.shutdown()


def test_the_optional_captcha_is_checked_with_the_provider(client, turnstile):
    petition = PetitionFactory()
    page = client.get(f"/petitions/{petition.slug}/").content.decode()
    assert 'class="cf-turnstile" data-sitekey="site-key"' in page
    refused = sign(client, petition, **{"cf-turnstile-response": "forged"})
    assert refused.status_code == 400 and "not a robot" in refused.content.decode()
    assert not Signature.objects.exists()
    assert sign(client, petition, **{"cf-turnstile-response": "good-token"}).status_code == 302
    assert Signature.objects.count() == 1


def test_without_a_captcha_provider_no_third_party_script_is_loaded(client):
    page = client.get(f"/petitions/{PetitionFactory().slug}/").content.decode()
    scripts = re.findall(r'<script src="([^"]*)"', page)
    assert scripts and all(src.startswith("/static/") for src in scripts)
    assert "https://" not in page.split("<main>")[0]


# --- Concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_identical_signatures_make_one(live_server, settings):
    import requests

    # Twenty of the same in a second would trip the per-email limit, which is not under test.
    settings.RALLY_SIGN_LIMIT_PER_EMAIL = 0
    petition = PetitionFactory()
    url = f"{live_server.url}/petitions/{petition.slug}/"
    start = threading.Barrier(20)
    statuses = []

    def sign_at_once():
        session = requests.Session()
        session.get(url, timeout=30)  # the CSRF cookie, as a browser would get it
        token = session.cookies["csrftoken"]
        start.wait(timeout=30)
        response = session.post(
            url,
            data={**VALID, "csrfmiddlewaretoken": token},
            headers={"Referer": url},
            allow_redirects=False,
            timeout=60,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=sign_at_once) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302] * 20
    assert Signature.objects.count() == 1
    assert Supporter.objects.count() == 1
    connection.close()
