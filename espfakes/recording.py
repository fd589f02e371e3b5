"""Record the messages a fake accepts, compactly enough to keep a whole benchmark run."""

from __future__ import annotations

import array
from collections.abc import Iterable, Mapping
from typing import Any

from espfakes.encoding import dumps


class Recorder:
    """Keep accepted messages as compact JSON and count them per recipient.

    Entries live back to back in one ``bytearray`` (each followed by a comma) with their end
    offsets in an ``array``. That costs the JSON size plus 8 bytes per message, far less than
    a dict per message would (figures: docs/performance.md), and ``messages_json()`` becomes a
    single slice.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._log = bytearray()
        self._ends = array.array("Q")

    def reset(self) -> None:
        """Forget everything recorded."""
        self.counts = {}
        self._log = bytearray()
        self._ends = array.array("Q")

    def __len__(self) -> int:
        return len(self._ends)

    def add(self, recipients: Iterable[str], entry: Mapping[str, Any]) -> None:
        """Record one accepted message and count it once for each recipient."""
        counts = self.counts
        for recipient in recipients:
            counts[recipient] = counts.get(recipient, 0) + 1
        self._log += dumps(entry)
        self._log += b","
        self._ends.append(len(self._log))

    def messages_json(self, offset: int = 0, limit: int | None = None) -> bytes:
        """Return recorded messages ``offset`` to ``offset + limit`` as a JSON array."""
        total = len(self._ends)
        offset = max(0, min(offset, total))
        stop = total if limit is None else max(offset, min(total, offset + limit))
        if offset == stop:
            return b"[]"
        start = self._ends[offset - 1] if offset else 0
        end = self._ends[stop - 1] - 1  # drop the trailing comma
        return b"[" + self._log[start:end] + b"]"

    def duplicates(self) -> dict[str, int]:
        """Return the recipients counted more than once."""
        return {recipient: n for recipient, n in self.counts.items() if n > 1}
