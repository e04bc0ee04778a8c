"""API keys: a ring of SHA-256 digests, looked up in constant shape.

Raw keys are hashed once, at configuration, and never kept. A presented key is hashed, looked
up by digest, and confirmed with ``hmac.compare_digest``; a miss is compared against a dummy
digest, so the failure path has the same shape and cost as the success path.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._codec import sha256
from ._config import names
from .errors import ConfigurationError
from .principal import Principal

__all__ = ["APIKey", "APIKeyRing", "hash_api_key"]


def hash_api_key(raw_key: str) -> bytes:
    """The SHA-256 digest under which ``raw_key`` is stored.

    Args:
        raw_key: the key as issued.
    """
    return sha256(raw_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class APIKey:
    """One API key's entry: its digest and what it stands for.

    Args:
        digest: the SHA-256 digest of the key (never the key).
        subject: who the key belongs to.
        name: a label for the key.
        scopes: what it may do.
        environment: e.g. ``live`` or ``test``.
        kind: e.g. ``secret`` or ``publishable``.
        claims: extra attributes attached to the principal (plan, limits...).
    """

    digest: bytes = field(repr=False)
    subject: str
    name: str | None = None
    scopes: frozenset[str] = frozenset()
    environment: str | None = None
    kind: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.digest, bytes) or len(self.digest) != 32:
            raise ConfigurationError("an API key digest is 32 bytes of SHA-256")
        if not isinstance(self.subject, str) or not self.subject:
            raise ConfigurationError("an API key needs a subject")
        object.__setattr__(self, "scopes", frozenset(self.scopes))
        object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))

    def principal(
        self,
        provider: str,
        *,
        scopes: frozenset[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Principal:
        """The principal this key stands for.

        Args:
            provider: the provider's name.
            scopes: the scopes granted (default: the entry's).
            extra: claims laid over the entry's (kind, environment, profile fields...).
        """
        claims: dict[str, Any] = {
            **self.claims,
            "key_name": self.name,
            "environment": self.environment,
            "key_kind": self.kind,
            **(extra or {}),
        }
        return Principal(
            subject=self.subject,
            provider=provider,
            credential="api_key",
            name=self.name,
            scopes=self.scopes if scopes is None else scopes,
            verified_by="local",
            claims=claims,
        )


_DUMMY = APIKey(digest=secrets.token_bytes(32), subject="-")


class APIKeyRing:
    """API keys by digest.

    Args:
        keys: entries to start with.
        prefixes: key prefixes that identify these keys when sent as a Bearer value
            (e.g. ``sk_live_``); without prefixes, keys are accepted only from ``x-api-key``.
    """

    def __init__(self, keys: Iterable[APIKey] = (), *, prefixes: Iterable[str] = ()) -> None:
        self.prefixes = names(prefixes, "prefixes")
        self._lock = threading.Lock()
        self._by_digest: dict[bytes, APIKey] = {}
        for key in keys:
            self._by_digest[key.digest] = key

    def __len__(self) -> int:
        return len(self._by_digest)

    def __repr__(self) -> str:
        return f"APIKeyRing({len(self)} keys, prefixes={self.prefixes!r})"

    def add(
        self,
        raw_key: str,
        *,
        subject: str,
        name: str | None = None,
        scopes: Iterable[str] = (),
        environment: str | None = None,
        kind: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> APIKey:
        """Hash ``raw_key`` once and store its entry; the raw key is not kept.

        Args:
            raw_key: the key as issued.
            subject: who the key belongs to.
            name: a label.
            scopes: what it may do.
            environment: e.g. ``live`` or ``test``.
            kind: e.g. ``secret`` or ``publishable``.
            claims: extra attributes for the principal.
        """
        if not isinstance(raw_key, str) or len(raw_key) < 16:
            raise ConfigurationError("an API key must be a string of at least 16 characters")
        entry = APIKey(
            digest=hash_api_key(raw_key),
            subject=subject,
            name=name,
            scopes=frozenset(scopes),
            environment=environment,
            kind=kind,
            claims=claims or {},
        )
        with self._lock:
            self._by_digest[entry.digest] = entry
        return entry

    def remove(self, raw_key: str) -> bool:
        """Forget a key; return whether it was there.

        Args:
            raw_key: the key as issued.
        """
        with self._lock:
            return self._by_digest.pop(hash_api_key(raw_key), None) is not None

    def recognises(self, value: str) -> bool:
        """Whether ``value`` carries one of this ring's prefixes.

        Args:
            value: a presented credential.
        """
        return bool(self.prefixes) and value.startswith(self.prefixes)

    def lookup(self, presented: str) -> APIKey | None:
        """The entry of ``presented``, or ``None``; hit and miss take the same path.

        Args:
            presented: the key as the client sent it.
        """
        digest = hash_api_key(presented)
        entry = self._by_digest.get(digest, _DUMMY)
        return entry if hmac.compare_digest(entry.digest, digest) else None
