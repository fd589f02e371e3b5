"""The Rally-Signature header: Stripe's scheme, so receivers can use a verifier they have.

`t` is the time of signing in unix seconds and `v1` the hex HMAC-SHA256, keyed with the
subscription's secret, of "<t>.<body>": a receiver recomputes it over the raw body it got and
refuses a stale `t`, which stops a captured request being replayed later.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Rally-Signature"


def signature_header_value(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Return the Rally-Signature value for `body`, signed now (or at `timestamp`)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
