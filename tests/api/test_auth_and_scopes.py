"""Tokens: who may call what, how often, and the record of each writing call."""

import os
import subprocess
import sys
import time

import pytest

from api.auth import TOKEN_CACHE_SECONDS
from api.models import ApiAuditEntry, ApiToken
from api.services.tokens import api_token_revoke
from bench.worker_processes import current_database_url
from supporters.models import Supporter
from tests.api.conftest import Osdi, signup_body, stored_counts
from tests.factories import SupporterFactory, TagFactory
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def assert_json_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/hal+json"
    message = response.json()["error"]
    assert message
    return message


def test_a_request_without_a_token_or_with_an_unknown_one_is_refused_with_401(osdi):
    client = osdi("write")
    anonymous = Osdi(root=client.root, secret=None)
    assert "OSDI-API-Token" in assert_json_error(anonymous.get(""), 401)
    assert "OSDI-API-Token" in assert_json_error(
        anonymous.post("people", signup_body("a@x.org")), 401
    )
    stranger = Osdi(root=client.root, secret="not-a-token-anyone-was-given")
    assert_json_error(stranger.get("people"), 401)
    assert_json_error(stranger.post("people", signup_body("a@x.org")), 401)
    assert not Supporter.objects.exists()


def test_a_revoked_token_is_refused_within_the_cache_time_and_writes_nothing(osdi):
    client = osdi("write")
    assert client.get("people").status_code == 200
    token = ApiToken.objects.get(name=client.token_name)
    assert api_token_revoke(token_id=token.pk) is True
    assert api_token_revoke(token_id=token.pk) is False
    started = time.monotonic()
    wait_for(
        lambda: client.get("people").status_code == 401,
        timeout=TOKEN_CACHE_SECONDS + 5,
        message="a revoked token was still taken after the cache time",
        interval=0.2,
    )
    assert time.monotonic() - started < TOKEN_CACHE_SECONDS + 5
    before = stored_counts()
    assert "revoked" in assert_json_error(client.post("people", signup_body("a@x.org")), 401)
    assert stored_counts() == before


def test_a_read_token_may_get_but_never_write(osdi):
    reader = osdi("read")
    person = SupporterFactory()
    tag = TagFactory()
    assert reader.get("").status_code == 200
    assert reader.get("people").status_code == 200
    assert reader.get(f"people/{person.uuid}").status_code == 200
    assert reader.get("tags").status_code == 200
    before = stored_counts()
    assert "only read" in assert_json_error(reader.post("people", signup_body("a@x.org")), 403)
    assert_json_error(reader.put(f"people/{person.uuid}", {"given_name": "X"}), 403)
    assert_json_error(reader.post("tags", {"name": "new"}), 403)
    person_href = reader.url(f"people/{person.uuid}")
    tagging = {"_links": {"osdi:person": {"href": person_href}}}
    assert_json_error(reader.post(f"tags/{tag.pk}/taggings", tagging), 403)
    assert stored_counts() == before
    assert not ApiAuditEntry.objects.exists()


def test_a_helpers_token_may_only_sign_people_up(osdi):
    helper = osdi("helpers")
    person = SupporterFactory()
    response = helper.post("people", signup_body("new@example.org"))
    assert response.status_code == 201, response.text
    before = stored_counts()
    for response in (
        helper.get(""),
        helper.get("people"),
        helper.get(f"people/{person.uuid}"),
        helper.put(f"people/{person.uuid}", {"given_name": "X"}),
        helper.get("tags"),
        helper.post("tags", {"name": "new"}),
    ):
        assert "signup helpers" in assert_json_error(response, 403)
    assert stored_counts() == before


def test_a_write_token_may_do_everything(osdi):
    writer = osdi("write")
    assert writer.get("people").status_code == 200
    assert writer.post("people", signup_body("a@example.org")).status_code == 201
    assert writer.post("tags", {"name": "volunteers"}).status_code == 201


def test_past_the_rate_limit_a_token_gets_429_with_retry_after(osdi, settings):
    settings.RALLY_API_RATE_LIMIT_PER_MINUTE = 3
    limited, other = osdi("read"), osdi("read")
    # Seven requests: even if a minute's window turns between them, one of them is the
    # fourth of its window.
    responses = [limited.get("people") for _ in range(7)]
    refused = [response for response in responses if response.status_code == 429]
    assert refused, [response.status_code for response in responses]
    assert "rate limit" in assert_json_error(refused[0], 429)
    assert 1 <= int(refused[0].headers["Retry-After"]) <= 60
    assert sum(response.status_code == 200 for response in responses) <= 6
    # The limit is each token's own.
    assert other.get("people").status_code == 200


def test_each_writing_call_is_audited_by_ids_and_reads_are_not(osdi):
    writer = osdi("write", name="crm sync")
    helper = osdi("helpers", name="website form")
    writer.get("people")
    created = writer.post("people", signup_body("Ann@Example.org", given_name="Ann")).json()
    helper.post("people", signup_body("bob@example.org"))
    refused = writer.post("people", {"person": {}})
    assert refused.status_code == 400
    entries = list(ApiAuditEntry.objects.order_by("pk"))
    assert [(e.token_name, e.method, e.status) for e in entries] == [
        ("crm sync", "POST", 201),
        ("website form", "POST", 201),
        ("crm sync", "POST", 400),
    ]
    ann = Supporter.objects.get(email="ann@example.org")
    assert entries[0].path == "/api/osdi/v1/people"
    assert entries[0].written == f"person:{ann.uuid}"
    assert created["identifiers"] == [f"rally:{ann.uuid}"]
    assert entries[2].written == ""
    assert not any("@" in entry.written for entry in entries)


def run_api_token_create(*arguments: str) -> subprocess.CompletedProcess:
    """Run the command as an operator would, in a process of its own, on the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": current_database_url(),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "api_token_create", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_api_token_create_prints_the_secret_alone_on_its_last_line(live_server):
    result = run_api_token_create("--name", "cli", "--scope", "read")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    token = ApiToken.objects.get(name="cli")
    assert token.scope == "read"
    assert secret not in {token.digest, ""} and " " not in secret
    assert secret.startswith(token.prefix)
    client = Osdi(root=f"{live_server.url}/api/osdi/v1", secret=secret)
    assert client.get("people").status_code == 200
    again = run_api_token_create("--name", "cli", "--scope", "read")
    assert again.returncode != 0
    assert "exists already" in again.stderr
