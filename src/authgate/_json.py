"""Strict JSON for tokens and key documents: UTF-8 only, no duplicate names, no NaN; and what
counts as a JSON number."""

from __future__ import annotations

import json
import math
from typing import Any, Final

__all__ = ["MAX_SAFE_NUMBER", "as_number", "is_number", "loads_strict"]

MAX_SAFE_NUMBER: Final = 2**53
"""The largest magnitude a numeric date may have (RFC 7493 §2.2: what every parser reads
exactly); beyond it, float arithmetic loses seconds and huge integers overflow."""


def is_number(value: object) -> bool:
    """Whether ``value`` is a JSON number: an ``int`` or ``float``, never a ``bool``.

    Args:
        value: a decoded JSON value.
    """
    kind = type(value)
    return kind is int or kind is float


def as_number(value: object) -> float | None:
    """``value`` as a float when it is a finite JSON number within ±2^53, else ``None``.

    Args:
        value: a decoded JSON value (a numeric date such as ``exp``).
    """
    if type(value) is int:
        return float(value) if -MAX_SAFE_NUMBER <= value <= MAX_SAFE_NUMBER else None
    if type(value) is float and math.isfinite(value) and abs(value) <= MAX_SAFE_NUMBER:
        return value
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


_decoder = json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_reject_constant)
_decode = _decoder.decode


MAX_DEPTH = 64
"""Deepest JSON nesting accepted: real claims, keys and user objects come nowhere near it."""


def loads_strict(data: str | bytes) -> Any:
    """Parse JSON strictly; raise ``ValueError`` on anything an RFC 8259 parser should refuse.

    Bytes must be UTF-8 (no UTF-16/32 guessing, no BOM); duplicate member names, ``NaN`` and
    ``Infinity``, nesting deeper than :data:`MAX_DEPTH`, and a ``\\u`` escape of a lone UTF-16
    surrogate (not text: RFC 8259 §8.2; it would fail every later ``encode``) are all
    ``ValueError`` (whatever the interpreter's own recursion limits).

    Args:
        data: the JSON text.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = _decode(text)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    # nesting can only be deep where brackets are many: most documents skip the walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and not _shallow(value):
        raise ValueError("JSON nested too deeply")
    # a lone surrogate can only come from a \u escape: most documents skip the walk.
    if "\\u" in text and not _all_text(value):
        raise ValueError("JSON holds a lone surrogate, which is not text")
    return value


def _all_text(value: Any) -> bool:
    """Whether every string in ``value`` (member names included) encodes as UTF-8."""
    stack = [value]
    try:
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                item.encode("utf-8")
            elif isinstance(item, dict):
                for name, child in item.items():
                    name.encode("utf-8")
                    stack.append(child)
            elif isinstance(item, list):
                stack.extend(item)
    except UnicodeEncodeError:
        return False
    return True


def _shallow(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return True
