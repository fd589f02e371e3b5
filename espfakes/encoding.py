"""Encode what the fakes keep and send back: compact JSON and packed recipient counts."""

from __future__ import annotations

import array
import json
from collections.abc import Mapping
from typing import Any

# json.dumps builds an encoder per call when given separators; the fakes encode per message.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact ASCII JSON."""
    return _ENCODER.encode(obj).encode("ascii")


def encode_counts(counts: Mapping[str, int]) -> tuple[bytes, bytes] | None:
    """Pack recipient counts as newline-joined keys plus an array of 64-bit counts.

    A benchmark asks for the counts of every recipient it sent to, and JSON is slow both ways
    at that size; this packing is not (figures: docs/performance.md). Returns ``None`` when a
    key cannot be packed (contains a newline or an unpaired surrogate), and the caller falls
    back to JSON.
    """
    joined = "\n".join(counts)
    if joined.count("\n") != max(len(counts) - 1, 0):
        return None
    try:
        keys = joined.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None
    return keys, array.array("Q", counts.values()).tobytes()


def decode_counts(keys: bytes, values: bytes) -> dict[str, int]:
    """Unpack what ``encode_counts`` packed."""
    numbers = array.array("Q")
    numbers.frombytes(values)
    if not keys:
        return {}
    return dict(zip(keys.decode("utf-8", "surrogateescape").split("\n"), numbers, strict=True))
