"""The small encodings every stage shares: strict base64url and SHA-256 digests."""

from __future__ import annotations

import binascii
import hashlib
import re
from typing import Final

__all__ = ["TO_STD", "b64url_decode", "canonical_tail", "is_strict_b64url", "sha256"]

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
# A segment of length 4k+2 or 4k+3 ends in a character whose spare low bits must be zero;
# indexed by len(segment) & 3 (4k+1 is never valid, 4k needs no check).
_TAILS: Final[tuple[frozenset[str], ...]] = (
    frozenset(),
    frozenset(),
    frozenset("AQgw"),
    frozenset("AEIMQUYcgkosw048"),
)
TO_STD: Final = bytes.maketrans(b"-_", b"+/")
"""``bytes.translate`` table from the base64url alphabet to standard base64."""


def canonical_tail(segment: str) -> bool:
    """Whether a segment already known to use the base64url alphabet has a canonical length
    and last character (no spare bits set).

    Args:
        segment: base64url text.
    """
    rest = len(segment) & 3
    return rest == 0 or (rest != 1 and segment[-1] in _TAILS[rest])


def is_strict_b64url(segment: str) -> bool:
    """Whether ``segment`` is canonical unpadded base64url (RFC 7515 §2).

    Args:
        segment: the text to check.
    """
    return _B64URL.fullmatch(segment) is not None and canonical_tail(segment)


def b64url_decode(segment: str) -> bytes:
    """Decode canonical unpadded base64url; raise ``ValueError`` on anything else.

    Args:
        segment: the base64url text.
    """
    if not is_strict_b64url(segment):
        raise ValueError("not canonical unpadded base64url")
    return binascii.a2b_base64(segment.encode("ascii").translate(TO_STD) + b"==")


def sha256(text: str) -> bytes:
    """The SHA-256 digest of ``text`` (UTF-8; lone surrogates escaped, never an error).

    Caches, denylists and key rings keep these digests, never the credential itself.

    Args:
        text: a credential or any other secret text.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
