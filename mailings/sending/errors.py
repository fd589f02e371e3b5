"""Decide whether a failed send is worth retrying, whatever backend raised it.

Like Healthchecks' `TransportError(permanent=…)`: the send queue retries transient failures
(throttling, timeouts, 4xx SMTP replies, 5xx HTTP answers) with back-off and records permanent
ones (a refused recipient, a 4xx HTTP answer) on the Delivery with the ESP's reason.
"""

import smtplib
from dataclasses import dataclass

import requests
import urllib3
from anymail.exceptions import AnymailRecipientsRefused, AnymailRequestsAPIError

# HTTP answers that mean "not now": throttling, timeouts and server trouble.
TRANSIENT_HTTP_STATUSES = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class SendError:
    reason: str
    permanent: bool
    # Seconds the ESP asked us to wait (HTTP Retry-After), if it said.
    retry_after: float | None = None
    # The request reached the ESP but its answer was lost (a reset or timeout after sending):
    # it may have been accepted, so it is recorded as unknown and never retried.
    outcome_unknown: bool = False


def _retry_after_seconds(response) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # An HTTP date: rare from ESPs; our own back-off applies.


def describe(error: Exception) -> str:
    """Return the exception with what the ESP answered, for the ledger and the admin."""
    reason = f"{type(error).__name__}: {error}"
    response = getattr(error, "response", None)
    answer = getattr(response, "text", "") if response is not None else ""
    if answer and answer[:200] not in reason:
        reason += f" (ESP answered {response.status_code}: {answer[:500]})"
    return reason[:2000]


def _never_sent(error: Exception) -> bool:
    """Tell whether a failed HTTP request certainly never reached the ESP (it failed to connect).

    requests wraps urllib3's errors (ConnectionError(MaxRetryError(reason=NewConnectionError)));
    walk the chain, a bounded number of steps, looking for a failure to connect.
    """
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    pending: list = [error.__cause__]
    for _ in range(20):
        if not pending:
            break
        item = pending.pop()
        if item is None:
            continue
        if isinstance(item, urllib3.exceptions.NewConnectionError):
            return True
        pending.append(getattr(item, "reason", None))
        pending.append(item.__cause__)
        pending.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
    return False


def classify_send_error(error: Exception) -> SendError:
    """Return what a send exception means for the Delivery it happened to."""
    reason = describe(error)
    if isinstance(error, AnymailRecipientsRefused):
        return SendError(reason, permanent=True)
    if isinstance(error, AnymailRequestsAPIError):
        status = getattr(error, "status_code", None)
        if status is None and not _never_sent(error):
            return SendError(reason, permanent=False, outcome_unknown=True)
        if status is None or status in TRANSIENT_HTTP_STATUSES:
            return SendError(
                reason, permanent=False, retry_after=_retry_after_seconds(error.response)
            )
        return SendError(reason, permanent=True)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in error.recipients.values()]
        return SendError(reason, permanent=not any(400 <= code < 500 for code in codes))
    if isinstance(error, smtplib.SMTPResponseException):
        return SendError(reason, permanent=not 400 <= error.smtp_code < 500)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        # The server hung up without a reply code: the message may have gone through.
        return SendError(reason, permanent=False, outcome_unknown=True)
    if isinstance(error, OSError):
        # Connection refused or reset while connecting: nothing was sent.
        return SendError(reason, permanent=False)
    return SendError(reason, permanent=True)
