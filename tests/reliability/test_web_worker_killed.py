"""A web worker killed (kill -9) in the middle of a surge of signatures.

The web server runs as deployed (granian, production settings, two worker processes of many
threads, and --respawn-failed-workers as in the Dockerfile) on the test database. Threads sign
as browsers do, each as a new signer; one worker process is killed while they do. A signature
answered with the redirect to the thank-you page was acknowledged to the signer, so it must be
in the database: signatures are committed, in a group commit of the worker's threads, before
anyone is told so (config/lib/group_commit.py).
"""

import http.client
import os
import signal
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings

from bench.web_server import WebServer, fetch_csrf
from campaigns.models import Signature
from tests.factories import PetitionFactory
from tests.processes import child_pids, wait_for

pytestmark = pytest.mark.slow

SIGNERS = 16
KILLS_AT_MOST = 5


def test_a_web_worker_killed_during_a_signing_surge_loses_no_acknowledged_signature(
    transactional_db, tmp_path
):
    petition = PetitionFactory(is_open=True, requires_confirmation=False)
    server = WebServer(
        server="granian",
        workers=2,
        threads=8,
        redis_url=settings.REDIS_URL,
        log_path=tmp_path / "web.log",
        extra_env={"GRANIAN_RESPAWN_FAILED_WORKERS": "true"},
    )
    url = server.start()
    surge = Surge(url, petition.get_absolute_url())
    try:
        with ThreadPoolExecutor(SIGNERS) as pool:
            for signer in range(SIGNERS):
                pool.submit(surge.sign_until_stopped, signer)
            wait_for(lambda: surge.acknowledged_count() >= 300, timeout=120, message=server.log)
            # A kill may land while its worker has no request in hand (on SQLite, whose one
            # writer the threads take turns at, more often): then it proves nothing about
            # acknowledged signatures, and the next worker is killed, a few times at most.
            for _ in range(KILLS_AT_MOST):
                unanswered_before = surge.unanswered_count()
                (victim, *_) = child_pids(server.process.pid)
                os.kill(victim, signal.SIGKILL)
                killed_at = surge.acknowledged_count()
                # Signing goes on: the other worker serves, and granian starts a new one.
                wait_for(
                    lambda victim=victim, killed_at=killed_at: (
                        surge.acknowledged_count() >= killed_at + 300
                        and victim not in child_pids(server.process.pid)
                        and len(child_pids(server.process.pid)) == 2
                    ),
                    timeout=120,
                    message=server.log,
                )
                if surge.unanswered_count() > unanswered_before:
                    break
            surge.stop.set()
    finally:
        surge.stop.set()
        server.stop()

    stored = set(
        Signature.objects.filter(petition=petition).values_list("supporter__email", flat=True)
    )
    lost = surge.acknowledged - stored
    assert not lost, f"{len(lost)} acknowledged signatures are not in the database"
    # The kill cut some requests off: those signers were never told they had signed.
    assert surge.unanswered, "the kill interrupted no request"
    assert surge.refused == 0


class Surge:
    """Sign a petition from many threads as new signers would, keeping every answer."""

    def __init__(self, base_url: str, petition_path: str):
        self.address = urllib.parse.urlsplit(base_url).netloc
        self.origin = base_url
        self.path = petition_path
        self.csrf_cookie, self.csrf_token = fetch_csrf(base_url + petition_path)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: set[str] = set()
        self.unanswered = 0
        self.refused = 0

    def acknowledged_count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def unanswered_count(self) -> int:
        with self.lock:
            return self.unanswered

    def sign_until_stopped(self, signer: int) -> None:
        attempt = 0
        while not self.stop.is_set():
            attempt += 1
            email = f"surge-{signer}-{attempt}@example.org"
            try:
                status, location = self._sign(email)
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.unanswered += 1
                continue
            with self.lock:
                if status == 302 and f"{self.path}thanks/" in location:
                    self.acknowledged.add(email)
                else:
                    self.refused += 1

    def _sign(self, email: str) -> tuple[int, str]:
        body = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": self.csrf_token,
                "first_name": "Surge",
                "last_name": "Signer",
                "email": email,
                "country": "DE",
                "postcode": "10115",
                "consent": "on",
                "website": "",
            }
        )
        connection = http.client.HTTPConnection(self.address, timeout=30)
        try:
            connection.request(
                "POST",
                self.path,
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": f"csrftoken={self.csrf_cookie}",
                    "Origin": self.origin,
                    "Referer": self.origin + self.path,
                },
            )
            response = connection.getresponse()
            response.read()
            return response.status, response.getheader("Location") or ""
        finally:
            connection.close()
