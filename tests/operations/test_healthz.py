"""/healthz: the database, Redis, a worker's heartbeat and beat's last run, and nothing more."""

import json
import socket
import threading
import time

import pytest
from django.conf import settings
from django.test import Client, override_settings

from config.heartbeats import SWEEP_KEY, worker_heartbeat_record
from config.redis import redis_client
from tests.processes import wait_for

CHECK_NAMES = {"database", "redis", "worker", "beat"}
ALL_OK = dict.fromkeys(CHECK_NAMES, "ok")
# A worker that beats every second, with beat inside it running the sweep every second.
FAST_HEARTBEATS = {"RALLY_WORKER_HEARTBEAT_SECONDS": "1", "RALLY_SWEEP_SECONDS": "1"}
ALL_QUEUES = [queue.name for queue in settings.CELERY_TASK_QUEUES]


def healthz(client, path="/healthz"):
    response = client.get(path)
    assert response["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.content)


def assert_reveals_nothing_else(body: dict, *, worker=None) -> None:
    """Only each check's name and ok/failing, and two ages in whole seconds."""
    assert set(body) == {
        "status",
        "checks",
        "worker_heartbeat_age_seconds",
        "beat_last_run_age_seconds",
    }
    assert body["status"] in {"ok", "failing"}
    assert set(body["checks"]) == CHECK_NAMES
    assert set(body["checks"].values()) <= {"ok", "failing"}
    for age in (body["worker_heartbeat_age_seconds"], body["beat_last_run_age_seconds"]):
        assert age is None or (isinstance(age, int) and age >= 0)
    text = json.dumps(body).lower()
    secrets = [socket.gethostname(), "127.0.0.1", "6379", "redis://", "celery", "error"]
    secrets += [queue for queue in ALL_QUEUES if queue not in CHECK_NAMES]
    if worker is not None:
        secrets.append(worker.lower())
    for secret in secrets:
        assert secret.lower() not in text, secret


def test_healthz_is_200_and_every_check_ok_with_a_worker_and_beat_running(
    client, celery_worker_factory
):
    worker = celery_worker_factory(beat=True, **FAST_HEARTBEATS)
    wait_for(lambda: healthz(client)[0] == 200, timeout=60, message=worker.log)
    for path in ("/healthz", "/healthz/"):
        status, body = healthz(client, path)
        assert (status, body["status"], body["checks"]) == (200, "ok", ALL_OK)
        assert body["worker_heartbeat_age_seconds"] <= 2
        assert body["beat_last_run_age_seconds"] <= settings.RALLY_HEALTH_BEAT_MAX_AGE_SECONDS
        assert_reveals_nothing_else(body)


@override_settings(RALLY_HEALTH_WORKER_MAX_AGE_SECONDS=2)
def test_healthz_is_503_naming_the_worker_once_the_only_worker_is_killed(
    client, celery_worker_factory
):
    worker = celery_worker_factory(beat=True, **FAST_HEARTBEATS)
    wait_for(lambda: healthz(client)[0] == 200, timeout=60, message=worker.log)
    worker.kill()  # kill -9: no clean goodbye, the heartbeat just stops
    wait_for(lambda: healthz(client)[0] == 503, timeout=10, message="the worker still looks alive")
    status, body = healthz(client)
    assert body["checks"] == {**ALL_OK, "worker": "failing"}
    assert body["worker_heartbeat_age_seconds"] >= 2
    assert_reveals_nothing_else(body)


def test_a_worker_stopped_cleanly_fails_the_worker_check_at_once(client, celery_worker_factory):
    worker = celery_worker_factory(**FAST_HEARTBEATS)
    wait_for(lambda: healthz(client)[1]["checks"]["worker"] == "ok", timeout=60, message=worker.log)
    worker.stop()
    status, body = healthz(client)
    assert (status, body["checks"]["worker"], body["worker_heartbeat_age_seconds"]) == (
        503,
        "failing",
        None,
    )


def test_healthz_is_503_naming_beat_when_the_sweep_never_ran(client, celery_worker_factory):
    worker = celery_worker_factory(**FAST_HEARTBEATS)  # a worker, but no beat
    wait_for(lambda: healthz(client)[1]["checks"]["worker"] == "ok", timeout=60, message=worker.log)
    status, body = healthz(client)
    assert (status, body["checks"]) == (503, {**ALL_OK, "beat": "failing"})
    assert body["beat_last_run_age_seconds"] is None
    assert_reveals_nothing_else(body)


def test_healthz_is_503_naming_beat_when_the_sweep_last_ran_too_long_ago(
    client, celery_worker_factory
):
    worker = celery_worker_factory(**FAST_HEARTBEATS)
    wait_for(lambda: healthz(client)[1]["checks"]["worker"] == "ok", timeout=60, message=worker.log)
    stale = settings.RALLY_HEALTH_BEAT_MAX_AGE_SECONDS + 30
    redis_client().set(SWEEP_KEY, str(time.time() - stale))
    status, body = healthz(client)
    assert (status, body["checks"]) == (503, {**ALL_OK, "beat": "failing"})
    assert body["beat_last_run_age_seconds"] >= stale


@pytest.mark.django_db
def test_healthz_is_503_naming_redis_when_redis_is_unreachable_and_answers_fast(client):
    worker_heartbeat_record(worker="alive@host", queues=ALL_QUEUES)
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        port = closed_port.getsockname()[1]
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
            started = time.monotonic()
            status, body = healthz(client)
            elapsed = time.monotonic() - started
    finally:
        closed_port.close()
    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "failing"
    # Heartbeats live in Redis: with it gone, no worker and no sweep can be vouched for.
    assert body["checks"]["worker"] == body["checks"]["beat"] == "failing"
    assert elapsed < 3
    assert_reveals_nothing_else(body, worker="alive@host")
    assert str(port) not in json.dumps(body)


@pytest.mark.django_db
def test_a_queue_that_no_live_worker_serves_fails_the_worker_check(client):
    worker_heartbeat_record(worker="only-transactional@host", queues=["transactional"])
    redis_client().set(SWEEP_KEY, str(time.time()))
    status, body = healthz(client)
    assert (status, body["checks"]) == (503, {**ALL_OK, "worker": "failing"})
    assert_reveals_nothing_else(body, worker="only-transactional@host")
    worker_heartbeat_record(worker="the-rest@host", queues=ALL_QUEUES[1:])
    assert healthz(client)[0] == 200


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["rally.example"])
def test_healthz_answers_a_probe_by_ip_over_plain_http_with_no_redirect(client):
    worker_heartbeat_record(worker="alive@host", queues=ALL_QUEUES)
    redis_client().set(SWEEP_KEY, str(time.time()))
    # A load balancer asks by the machine's address over HTTP: no 400 for the host, no 301.
    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000", secure=False)
    assert response.status_code == 200
    assert json.loads(response.content)["checks"] == ALL_OK
    # Other pages keep both protections.
    assert client.get("/petitions/", HTTP_HOST="10.0.0.7:8000").status_code == 400
    assert client.get("/petitions/", HTTP_HOST="rally.example").status_code == 301


@pytest.mark.django_db
def test_healthz_is_never_cached_and_always_json(client):
    response = client.get("/healthz", HTTP_ACCEPT="text/html")
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_a_check_that_hangs_fails_at_its_timeout_and_holds_nothing_up(client, monkeypatch):
    from operations import health

    worker_heartbeat_record(worker="alive@host", queues=ALL_QUEUES)
    released = threading.Event()
    # A database that never answers (a dead host without a TCP reset), until the test ends.
    monkeypatch.setattr(health.DatabaseCheck, "run", lambda self: released.wait(60))
    try:
        started = time.monotonic()
        status, body = healthz(client)
        elapsed = time.monotonic() - started
    finally:
        released.set()
    assert (status, body["checks"]["database"], body["checks"]["redis"]) == (503, "failing", "ok")
    # The check's budget and a second of grace, not the minute the probe would have hung.
    assert elapsed < health.CHECK_TIMEOUT.total_seconds() + 3


@pytest.mark.django_db
def test_healthz_answers_reads_only_and_a_post_meets_the_usual_csrf_check():
    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.head("/healthz").status_code in (200, 503)
    assert csrf_client.post("/healthz").status_code == 403
    assert csrf_client.post("/healthz/").status_code == 403
