"""Validation shared by every constructor: a configuration mistake fails at start-up, clearly.

Each helper returns the normalised value or raises :class:`ConfigurationError` naming the
argument. None of them ever echoes a secret.
"""

from __future__ import annotations

import math
import re
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
    "required",
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


_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
"""RFC 6749 §3.3's scope-token: visible ASCII but the double quote and backslash."""


def required(values: tuple[Any, ...], kind: str, guard: str) -> tuple[str, ...]:
    """The names a guard requires, as its call got them (``require_scopes("a", "b")``): at
    least one, each its own non-empty string argument, a scope one RFC 6749 scope-token (a
    token's space-separated ``scope`` grants scopes one by one: ``"a b"`` could never be held).

    Args:
        values: the guard's positional arguments.
        kind: ``"scope"`` or ``"role"``.
        guard: the guard's name, for the error.
    """
    if not values:
        raise ConfigurationError(f"{guard}() needs at least one {kind}")
    for value in values:
        if isinstance(value, list | tuple | set | frozenset):
            raise ConfigurationError(
                f"{guard}() takes each {kind} as its own argument: {guard}('a', 'b'), not a list"
            )
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"each {kind} of {guard}() must be a non-empty string")
        if kind == "scope" and _SCOPE_TOKEN.fullmatch(value) is None:
            raise ConfigurationError(
                f"{guard}(): {value!r} is not one scope (RFC 6749 §3.3: no spaces, quotes or "
                "backslashes); pass each scope as its own argument"
            )
    return values


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
