"""Which send failures are retried, recorded, or reported as unknown — with real clients."""

import smtplib
import socket

import pytest
from django.core.mail import EmailMessage, get_connection

from espfakes import FakePostmark
from mailings.sending.errors import classify_send_error


def postmark_send(settings, api_url: str):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": api_url}
    message = EmailMessage("Hi", "Body", "from@example.org", ["ann@example.org"])
    with pytest.raises(Exception) as raised:  # noqa: PT011 -- each backend raises its own type
        get_connection().send_messages([message])
    return classify_send_error(raised.value)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_transient_nothing_was_sent(settings):
    failure = postmark_send(settings, f"http://127.0.0.1:{unused_port()}/")
    assert not failure.permanent and not failure.outcome_unknown


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_server_errors_are_transient(settings, status):
    with FakePostmark(retry_after=7) as esp:
        esp.fail_next(1, status=status)
        failure = postmark_send(settings, esp.api_url)
    assert not failure.permanent and not failure.outcome_unknown
    assert failure.retry_after == (7 if status == 429 else failure.retry_after)


def test_a_reply_lost_after_the_request_was_sent_is_unknown_not_retried(settings):
    with FakePostmark() as esp:
        esp.fail_next(1, status="drop_after_accept")
        failure = postmark_send(settings, esp.api_url)
        assert esp.counts() == {"ann@example.org": 1}
    assert failure.outcome_unknown


def test_an_inactive_recipient_is_permanent_with_the_esps_answer(settings):
    with FakePostmark(reject_recipients=["ann@example.org"]) as esp:
        failure = postmark_send(settings, esp.api_url)
    assert failure.permanent
    assert "ESP answered 422" in failure.reason


@pytest.mark.parametrize(
    ("error", "permanent", "unknown"),
    [
        (smtplib.SMTPRecipientsRefused({"a@example.org": (451, b"later")}), False, False),
        (smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"no such user")}), True, False),
        (smtplib.SMTPDataError(421, b"closing"), False, False),
        (smtplib.SMTPDataError(554, b"rejected"), True, False),
        (smtplib.SMTPServerDisconnected("gone"), False, True),
        (ConnectionRefusedError(111, "refused"), False, False),
    ],
)
def test_smtp_replies_are_classified_by_code(error, permanent, unknown):
    failure = classify_send_error(error)
    assert (failure.permanent, failure.outcome_unknown) == (permanent, unknown)
