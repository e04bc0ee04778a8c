"""Validation shared by every constructor: a configuration mistake fails at start-up, clearly.

Each helper returns the normalised value or raises :class:`ConfigurationError` naming the
argument. None of them ever echoes a secret.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

from .errors import ConfigurationError

__all__ = [
    "MAX_LEEWAY",
    "header_safe",
    "leeway_seconds",
    "names",
    "non_negative",
    "positive",
    "size",
]

MAX_LEEWAY: Final = 300.0
"""The most clock skew any verifier may allow, in seconds: revocations are remembered this
much past the expiry of the tokens they deny, so none is served again within its leeway."""


def names(value: Iterable[str] | Any, what: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    """A list of names as a tuple; a bare string is refused (it would iterate as letters).

    Args:
        value: the configured list.
        what: the argument's name, for the error.
        allow_empty: whether an empty list is acceptable.
    """
    if isinstance(value, str | bytes):
        raise ConfigurationError(f"{what} must be a list of names, not one string: [{value!r}]")
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigurationError(f"{what} must be a list of names") from None
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError(f"each of {what} must be a non-empty string")
    if not items and not allow_empty:
        raise ConfigurationError(f"{what} must not be empty")
    return items


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be a finite number, not {type(value).__name__}")
    return float(value)


def non_negative(value: Any, what: str) -> float:
    """A finite number of seconds (or bytes) that may be zero.

    Args:
        value: the configured number.
        what: the argument's name, for the error.
    """
    number = _number(value, what)
    if number < 0:
        raise ConfigurationError(f"{what} must be >= 0")
    return number


def leeway_seconds(value: Any, what: str = "leeway") -> float:
    """Seconds of clock skew: from 0 to :data:`MAX_LEEWAY`.

    Args:
        value: the configured number.
        what: the argument's name, for the error.
    """
    number = non_negative(value, what)
    if number > MAX_LEEWAY:
        raise ConfigurationError(
            f"{what} must be at most {MAX_LEEWAY:.0f} seconds: a larger skew is a clock to fix"
        )
    return number


def positive(value: Any, what: str) -> float:
    """A finite number greater than zero.

    Args:
        value: the configured number.
        what: the argument's name, for the error.
    """
    number = _number(value, what)
    if not number > 0:
        raise ConfigurationError(f"{what} must be > 0")
    return number


def size(value: Any, what: str, *, minimum: int = 0) -> int:
    """A whole number of entries or bytes, at least ``minimum``.

    Args:
        value: the configured number.
        what: the argument's name, for the error.
        minimum: the least value accepted.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{what} must be a whole number, not {type(value).__name__}")
    if value < minimum:
        raise ConfigurationError(f"{what} must be >= {minimum}")
    return value


def header_safe(value: Any, what: str) -> str:
    """A secret or key that will be sent in an HTTP header: visible ASCII, no spaces at its
    ends. A copied placeholder (``sk_live_…``) fails here, not on the first request.

    Args:
        value: the configured text (never echoed: it may be a secret).
        what: the argument's name, for the error.
    """
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string")
    if not all(" " <= c <= "~" for c in value) or value != value.strip():
        raise ConfigurationError(
            f"{what} cannot be sent in an HTTP header: only visible ASCII is allowed "
            "(is it a copied placeholder?)"
        )
    return value
