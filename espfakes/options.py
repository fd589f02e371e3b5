"""Convert option values, whether they arrive as JSON, a query string or the command line.

Each fake's ``option_spec`` pairs an option with its default and one of these converters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def rate(value: Any) -> float:
    """Convert ``value`` to a probability between 0 and 1."""
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"a rate must be between 0 and 1, got {value!r}")
    return number


def non_negative(value: Any) -> float:
    """Convert ``value`` to a float that is zero or more."""
    number = float(value)
    if number < 0:
        raise ValueError(f"expected a value >= 0, got {value!r}")
    return number


def non_negative_int(value: Any) -> int:
    """Convert ``value`` to an int that is zero or more."""
    number = int(value)
    if number < 0:
        raise ValueError(f"expected an integer >= 0, got {value!r}")
    return number


def boolean(value: Any) -> bool:
    """Convert ``value`` to a bool, reading "false", "no", "off" and "0" as false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def optional_int(value: Any) -> int | None:
    """Convert ``value`` to an int, keeping ``None``."""
    return None if value is None else int(value)


def address_list(addresses: Iterable[str]) -> list[str]:
    """Turn one address or an iterable of addresses into a JSON-friendly list."""
    return [addresses] if isinstance(addresses, str) else list(addresses)


def address_set(value: Any) -> frozenset[str]:
    """Convert one address or an iterable of addresses to a lower-cased frozenset."""
    if isinstance(value, str):
        value = [value]
    return frozenset(str(address).strip().lower() for address in value)
