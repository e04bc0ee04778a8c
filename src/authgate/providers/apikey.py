"""API keys checked against an :class:`~authgate.APIKeyRing`, with nothing else."""

from __future__ import annotations

from .._cache import Memo
from ..apikeys import APIKey, APIKeyRing
from ..errors import ConfigurationError, InvalidToken
from ..extract import Credential
from ..principal import Principal
from .base import Provider

__all__ = ["APIKeyProvider"]


class APIKeyProvider(Provider):
    """Authenticate API keys against an :class:`APIKeyRing`.

    Args:
        name: the provider's name.
        ring: the keys.
    """

    accepts_jwt = False
    accepts_api_keys = True
    cache_ttl = 0.0  # a ring lookup is one hash; caching would keep raw keys in memory.

    def __init__(self, name: str, ring: APIKeyRing) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a provider needs a non-empty name")
        if not isinstance(ring, APIKeyRing):
            raise ConfigurationError("APIKeyProvider needs an authgate.APIKeyRing")
        self.name = name
        self.ring = ring
        self.api_key_prefixes = ring.prefixes
        # a key's principal is fixed by its entry: build it once (keyed by the entry object).
        self._principals: Memo[int, tuple[APIKey, Principal]] = Memo(max(4 * len(ring), 4096))

    def __repr__(self) -> str:
        return f"APIKeyProvider({self.name!r}, {self.ring!r})"

    def accepts_api_key(self, value: str, *, from_header: bool) -> bool:
        return from_header or self.ring.recognises(value)

    def verify(self, credential: Credential) -> Principal:
        entry = self.ring.lookup(credential.value)
        if entry is None:
            raise InvalidToken("the API key is not recognised")
        known = self._principals.get(id(entry))
        if known is not None and known[0] is entry:
            return known[1]
        principal = entry.principal(self.name)
        self._principals.put(id(entry), (entry, principal))
        return principal

    async def verify_async(self, credential: Credential) -> Principal:
        return self.verify(credential)
