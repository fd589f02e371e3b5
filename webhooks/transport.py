"""POST one webhook body: no redirects, short timeouts, and only to an address we checked.

requests connects through urllib3, which resolves the host when it opens a connection. The
connection classes here replace that step: they resolve the name, check every address with
destinations.checked_address, and connect to the checked address itself; the request still
names the host, so the Host header, TLS's SNI and the certificate check are the host's. There
is no moment between the check and the connection for the DNS answer to change (rebinding).
Proxies from the environment are ignored (`trust_env = False`): a proxy would connect for us,
to an address we never checked.
"""

import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from .destinations import checked_address

# How much of a receiver's answer is kept on the delivery: enough to see why it refused.
RESPONSE_KEPT_BYTES = 2048


class _CheckedConnectionMixin:
    def _new_conn(self):
        address = checked_address(self._dns_host, self.port)
        try:
            return urllib3_connection.create_connection(
                (address, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as error:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out (connect timeout={self.timeout})"
            ) from error
        except OSError as error:
            raise NewConnectionError(self, f"Failed to connect to {self.host}: {error}") from error


class _CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    pass


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPConnectionPool,
            "https": _CheckedHTTPSConnectionPool,
        }


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: its status, the start of its body, and its Retry-After."""

    status_code: int
    body: str
    # Seconds the receiver asked us to wait (Retry-After as a number), if it said so.
    retry_after: float | None = None


def webhook_post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to `url` and return the answer; raise requests' errors when there is none.

    Raises destinations.DestinationRefused when the host resolves to a refused address.
    `timeout` bounds the connection and each read; the answer's body is read only up to
    RESPONSE_KEPT_BYTES and within `timeout` in all, so a receiver that trickles its answer
    byte by byte holds the worker no longer than that.
    """
    with requests.Session() as session:
        session.trust_env = False
        adapter = _CheckedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        response = session.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
        )
        with response:
            kept = _read_start(response, deadline=time.monotonic() + timeout)
        return Answer(
            response.status_code,
            kept.decode("utf-8", errors="replace"),
            _seconds(response.headers.get("Retry-After", "")),
        )


def _seconds(retry_after: str) -> float | None:
    """Read Retry-After given in seconds; its HTTP-date form is rare enough to be ignored."""
    try:
        seconds = float(retry_after.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _read_start(response: requests.Response, *, deadline: float) -> bytes:
    kept = b""
    try:
        for chunk in response.iter_content(chunk_size=512):
            kept += chunk
            if len(kept) >= RESPONSE_KEPT_BYTES or time.monotonic() > deadline:
                break
    except requests.RequestException:
        # The status came; what followed it is only kept for the record.
        pass
    return kept[:RESPONSE_KEPT_BYTES]
