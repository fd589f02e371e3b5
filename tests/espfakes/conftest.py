"""Share the fake ESPs between the tests that drive them with the real clients.

Plain tests: no database. They run with or without pytest-django; without it (``-p no:django``)
Django is configured here with just what sending mail needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        DEFAULT_FROM_EMAIL="Rally <rally@example.org>",
        ANYMAIL={},
    )
    django.setup()

from django.test import override_settings  # noqa: E402

from espfakes import FakePostmark, FakeSMTP  # noqa: E402
from tests.espfakes.messages import POSTMARK_BACKEND  # noqa: E402


@pytest.fixture(autouse=True)
def empty_test_redis() -> None:
    """Replace the project's Redis-flushing autouse fixture: these tests never touch Redis.

    This keeps them runnable without a Redis server or the project's settings.
    """


def _espfakes_children() -> list[int]:
    """Return the ids of live child processes of this process that run an espfakes server."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited while we looked
        fields = stat.rsplit(")", 1)[1].split()
        state, parent = fields[0], fields[1]
        if parent == me and state != "Z" and b"espfakes." in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module", autouse=True)
def no_leaked_servers() -> Iterator[None]:
    """Fail the module if any fake server process outlives its tests."""
    before = set(_espfakes_children())
    yield
    assert set(_espfakes_children()) - before == set()


@pytest.fixture(scope="module")
def postmark_server() -> Iterator[FakePostmark]:
    with FakePostmark() as esp:
        yield esp


@pytest.fixture
def esp(postmark_server: FakePostmark) -> Iterator[FakePostmark]:
    """Give each test a clean fake Postmark, with Django settings pointing anymail at it."""
    postmark_server.reset()
    postmark_server.configure(
        latency_ms=0,
        rate_429=0,
        rate_500=0,
        rate_drop=0,
        reject_recipients=[],
        seed=0,
        webhook_url="",
        webhook_delivery_rate=0,
        webhook_bounce_rate=0,
        webhook_complaint_rate=0,
        webhook_delay_ms=0,
        search_lag_ms=0,
    )
    with override_settings(
        EMAIL_BACKEND=POSTMARK_BACKEND, ANYMAIL=postmark_server.anymail_settings()
    ):
        yield postmark_server


@pytest.fixture(scope="module", params=["aiosmtpd", "bulk"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[FakeSMTP]:
    """Run the sink as each protocol serves it: aiosmtpd records bodies, the bulk one does not."""
    with FakeSMTP(record_bodies=request.param == "aiosmtpd") as sink:
        yield sink


@pytest.fixture(scope="module")
def smtp_server_with_bodies() -> Iterator[FakeSMTP]:
    with FakeSMTP() as sink:
        yield sink


def _clean(server: FakeSMTP) -> Iterator[FakeSMTP]:
    server.reset()
    server.configure(
        temp_fail_rate=0, temp_fail_stage="rcpt", reject_recipients=[], seed=0, latency_ms=0
    )
    with override_settings(**server.django_settings()):
        yield server


@pytest.fixture
def sink(smtp_server: FakeSMTP) -> Iterator[FakeSMTP]:
    """Give each test a clean SMTP sink, with Django's SMTP backend pointing at it.

    Each test runs against both protocols (espfakes/_smtp.py and espfakes/_smtp_bulk.py).
    """
    yield from _clean(smtp_server)


@pytest.fixture
def sink_with_bodies(smtp_server_with_bodies: FakeSMTP) -> Iterator[FakeSMTP]:
    """Give each test a clean SMTP sink that records bodies."""
    yield from _clean(smtp_server_with_bodies)
