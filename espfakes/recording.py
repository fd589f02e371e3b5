"""Record the messages a fake accepts, compactly enough to keep a whole benchmark run."""

from __future__ import annotations

import array
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from espfakes.encoding import dumps

Completion = Callable[[], Mapping[str, Any]]


class Recorder:
    """Keep accepted messages as compact JSON and count them per recipient.

    Entries live back to back in one ``bytearray`` (each followed by a comma) with their end
    offsets in an ``array``. That costs the JSON size plus 8 bytes per message, far less than
    a dict per message would (figures: docs/performance.md), and ``messages_json()`` becomes a
    single slice.

    An entry may be completed later (``add_encoded``): until it is read it stays as first
    encoded; once read, its completed encoding is kept beside the log and spliced in.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._log = bytearray()
        self._ends = array.array("Q")
        self._later: dict[int, Completion | bytes] = {}  # by index, ascending

    def reset(self) -> None:
        """Forget everything recorded."""
        self.counts = {}
        self._log = bytearray()
        self._ends = array.array("Q")
        self._later = {}

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

    def add_encoded(
        self, recipients: Iterable[str], entry: bytes, completion: Completion | None = None
    ) -> None:
        """Record one accepted message already encoded as ``dumps`` would encode it.

        ``completion`` returns keys that complete the entry; it runs when the entry is first
        read, which keeps costly parsing (the SMTP sink's sample of headers) out of a send.
        """
        counts = self.counts
        for recipient in recipients:
            counts[recipient] = counts.get(recipient, 0) + 1
        if completion is not None:
            self._later[len(self._ends)] = completion
        self._log += entry
        self._log += b","
        self._ends.append(len(self._log))

    def messages_json(self, offset: int = 0, limit: int | None = None) -> bytes:
        """Return recorded messages ``offset`` to ``offset + limit`` as a JSON array."""
        total = len(self._ends)
        offset = max(0, min(offset, total))
        stop = total if limit is None else max(offset, min(total, offset + limit))
        if offset == stop:
            return b"[]"
        ends = self._ends
        start = ends[offset - 1] if offset else 0
        end = ends[stop - 1]
        completed = [index for index in self._later if offset <= index < stop]
        if not completed:
            return b"[" + self._log[start : end - 1] + b"]"  # without the trailing comma
        parts = [b"["]
        for index in completed:
            parts.append(self._log[start : ends[index - 1] if index else 0])
            parts.append(self._completed(index))
            parts.append(b",")
            start = ends[index]
        parts.append(self._log[start:end])
        joined = b"".join(parts)
        return joined[:-1] + b"]"

    def _completed(self, index: int) -> bytes:
        later = self._later[index]
        if isinstance(later, bytes):
            return later
        first = self._log[self._ends[index - 1] if index else 0 : self._ends[index] - 1]
        encoded = dumps({**json.loads(first), **later()})
        self._later[index] = encoded
        return encoded

    def duplicates(self) -> dict[str, int]:
        """Return the recipients counted more than once."""
        return {recipient: n for recipient, n in self.counts.items() if n > 1}
