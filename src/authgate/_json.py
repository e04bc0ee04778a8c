"""Strict JSON for tokens and key documents: UTF-8 only, no duplicate names, no NaN."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads_strict"]


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
    ``Infinity``, and nesting deeper than :data:`MAX_DEPTH` are all ``ValueError`` (whatever
    the interpreter's own recursion limits).

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
    return value


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
