"""Decide which requests a fake fails.

Each provider's app asks once per request (Postmark) or transaction (SMTP) and turns the
outcome into its own kind of failure: an HTTP status, a dropped connection, an SMTP 4xx reply.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from typing import Any


class Faults:
    """Decide which requests fail: an exact countdown first, then seeded random rates."""

    def __init__(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self._forced: deque[list[Any]] = deque()  # [remaining, outcome], served in order

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence so a run can be repeated exactly."""
        self.rng.seed(seed)

    def force(self, count: int, outcome: Any) -> None:
        """Queue ``outcome`` for the next ``count`` requests, after anything already queued."""
        if count > 0:
            self._forced.append([count, outcome])

    def clear(self) -> None:
        """Forget queued outcomes."""
        self._forced.clear()

    @property
    def pending(self) -> int:
        """Return how many queued outcomes remain."""
        return sum(remaining for remaining, _ in self._forced)

    def take_forced(self) -> Any:
        """Return the next queued outcome, or ``None``."""
        if not self._forced:
            return None
        slot = self._forced[0]
        slot[0] -= 1
        if slot[0] <= 0:
            self._forced.popleft()
        return slot[1]

    def pick(self, bands: Iterable[tuple[float, Any]]) -> Any:
        """Return the outcome whose band one random draw falls in, or ``None``.

        Bands are consecutive slices of [0, 1), so their rates are exact fractions of the
        requests. No random number is drawn when every rate is zero, which keeps a seeded
        sequence stable while faults are switched off.
        """
        bands = [(r, outcome) for r, outcome in bands if r > 0]
        if not bands:
            return None
        draw = self.rng.random()
        edge = 0.0
        for band_rate, outcome in bands:
            edge += band_rate
            if draw < edge:
                return outcome
        return None
