"""Logs: JSON lines in production, readable lines elsewhere, each carrying the ids it concerns."""

import io
import json
import logging
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest

from config.logs import logging_settings
from espfakes import FakePostmark
from mailings.models import Mailing
from mailings.sending import delivery_snapshot, mailing_send, mailing_send_batch
from supporters.tokens import make_unsubscribe_token
from tests.factories import MailingFactory, SupporterFactory
from tests.mailings.sending.test_queue_with_real_workers import postmark_env, wait_until_finished


class JsonLines(list):
    """The lines a test's code logged, each a dict, as production's formatter wrote them."""

    def with_event(self, text: str) -> list[dict]:
        return [line for line in self if text in line["event"]]


@contextmanager
def json_logs():
    """Send every record logged inside the block through the production (JSON) formatter."""
    formatter_settings = dict(
        logging_settings(log_format="json", level="INFO")["formatters"]["json"]
    )
    formatter = formatter_settings.pop("()")(**formatter_settings)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    lines = JsonLines()
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


@pytest.mark.django_db
def test_a_batch_sends_lines_carry_the_mailing_batch_and_delivery_ids_as_json_keys(settings):
    settings.RALLY_SEND_BATCH_SIZE = 3
    for number in range(5):
        SupporterFactory(email=f"reader{number}@example.org")
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    delivery_snapshot(mailing_id=mailing.pk)
    delivery_ids = sorted(mailing.deliveries.values_list("pk", flat=True))

    with json_logs() as lines:
        first = mailing_send_batch(mailing_id=mailing.pk, worker="w")
        second = mailing_send_batch(mailing_id=mailing.pk, worker="w")
        last = mailing_send_batch(mailing_id=mailing.pk, worker="w")
    assert (len(first.sent), len(second.sent), last.more) == (3, 2, False)

    batches = lines.with_event("Batch done")
    assert [line["mailing_id"] for line in batches] == [mailing.pk, mailing.pk]
    assert [(line["first_delivery_id"], line["last_delivery_id"]) for line in batches] == [
        (delivery_ids[0], delivery_ids[2]),
        (delivery_ids[3], delivery_ids[4]),
    ]
    assert batches[0]["batch_id"] != batches[1]["batch_id"]
    assert all(line["level"] == "info" and line["logger"] for line in batches)
    # The call that found nothing left finished the mailing: that line, from control.py, names
    # the mailing too.
    (finished,) = lines.with_event("Mailing sent to everyone")
    assert finished["mailing_id"] == mailing.pk
    # Nothing is bound once the batch is over.
    with json_logs() as after:
        logging.getLogger("rally.test").info("after the batches")
    assert set(after[0]) == {"event", "logger", "level", "timestamp"}


def test_stdlib_loggers_with_args_and_extra_come_out_as_json_keys():
    with json_logs() as lines:
        logging.getLogger("mailings.somewhere").warning(
            "Marked %s deliveries UNKNOWN", 3, extra={"delivery_id": 7}
        )
    (line,) = lines
    assert line["event"] == "Marked 3 deliveries UNKNOWN"
    assert (line["delivery_id"], line["level"], line["logger"]) == (
        7,
        "warning",
        "mailings.somewhere",
    )


def test_a_traceback_in_json_stays_one_line_without_local_variables():
    with json_logs() as lines:
        try:
            password = "hunter2"  # noqa: S105 -- a local a traceback must not show
            raise ValueError(f"bad input of length {len(password)}")
        except ValueError:
            logging.getLogger("rally.test").exception("It failed")
    (line,) = lines
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert "hunter2" not in json.dumps(line)


@pytest.mark.django_db
def test_every_line_of_a_request_carries_its_request_id(client):
    with json_logs() as lines:
        # A webhook post without credentials: the intake logs its refusal as it handles it.
        response = client.post(
            "/anymail/postmark/tracking/", data="{}", content_type="application/json"
        )
    assert response.status_code in (400, 401, 403)
    refusal = [line for line in lines if line["logger"].startswith("mailings.feedback")]
    (finished,) = lines.with_event("request_finished")
    assert finished["request_id"] and finished["code"] == response.status_code
    assert refusal and {line["request_id"] for line in refusal} == {finished["request_id"]}
    assert "ip" not in finished  # supporters' addresses stay out of the logs


@pytest.mark.django_db
def test_request_lines_hold_no_supporters_token_nor_query_string(client):
    supporter = SupporterFactory(email="reader@example.org")
    token = make_unsubscribe_token(supporter.pk)
    with json_logs() as lines:
        client.get(f"/unsubscribe/{token}/")
        client.get(f"/unsubscribe/{token}/?email=reader@example.org&t=personal-petition-token")
    request_lines = [line for line in lines if "request" in line]
    assert len(request_lines) == 2  # one request_finished line each
    assert {line["request"] for line in request_lines} == {"GET /unsubscribe/[token]/"}
    everything = json.dumps(lines)
    assert token not in everything
    assert "reader@example.org" not in everything
    assert "personal-petition-token" not in everything


def test_production_writes_json_lines_and_other_settings_readable_lines():
    def formatter_of(settings_module: str, **env) -> str:
        code = (
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.LOGGING['handlers']['console']['formatter'])"
        )
        result = subprocess.run(  # noqa: S603 -- our interpreter and code
            [sys.executable, "-c", code],
            env={**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    production = {
        "SECRET_KEY": "x" * 50,
        "ANYMAIL_WEBHOOK_SECRET": "user:password",
        "RALLY_SUPPRESSION_HASH_KEY": "key",
        "RALLY_SENDERS": '[{"name": "Campaigns", "email": "campaigns@example.org"}]',
        "RALLY_ORGANISATION_NAME": "An Organisation",
        "RALLY_ORGANISATION_ADDRESS": "1 Street, Town",
    }
    assert formatter_of("config.settings.production", **production) == "json"
    assert formatter_of("config.settings.production", **production, RALLY_LOG_FORMAT="console") == (
        "console"
    )
    assert formatter_of("config.settings.local") == "console"
    assert formatter_of("config.settings.local", RALLY_LOG_FORMAT="json") == "json"


def test_an_unknown_log_format_stops_the_start_with_a_clear_message():
    with pytest.raises(ValueError, match="RALLY_LOG_FORMAT must be one of json, console"):
        logging_settings(log_format="xml", level="INFO")


def test_a_workers_lines_carry_the_task_mailing_and_batch_ids_as_json(celery_worker_factory):
    for number in range(4):
        SupporterFactory(email=f"reader{number}@example.org")
    mailing = MailingFactory()
    with FakePostmark() as esp:
        worker = celery_worker_factory(
            **postmark_env(esp, RALLY_LOG_FORMAT="json", RALLY_SEND_BATCH_SIZE=2)
        )
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker])
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    batches = [line for line in lines if line["event"].startswith("Batch done")]
    assert sum(line["delivery_count"] for line in batches) == 4
    for line in batches:
        assert line["mailing_id"] == mailing.pk
        assert line["task_id"] and line["batch_id"]
    # Celery's own log lines (a task received, succeeded) are JSON too, not in its format
    # ("[… INFO/MainProcess] …"); only its start-up banner, printed, is not a log line.
    assert any(line["logger"] == "celery.worker.strategy" for line in lines)
    assert not [line for line in worker.log().splitlines() if "/MainProcess]" in line]
