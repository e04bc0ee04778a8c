"""What happens inside authgate, as small typed events for metrics
(``Authenticator.add_listener``).

Events are emitted where work is already expensive (a verification that missed the cache, a
key fetch, a call to a provider, a breaker changing state), never on a cache hit: hits are
counted by a counter that adapters read when scraped (:attr:`Authenticator.stats`).

A listener must be quick and must not raise; one that raises is logged once and ignored.
Events never carry a credential, a key or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["BreakerChange", "Decision", "Event", "KeyFetch", "RemoteCall"]


@dataclass(frozen=True, slots=True)
class Decision:
    """A credential verified past the cache: accepted, or refused with a reason.

    Args:
        outcome: ``accepted`` or ``refused``.
        reason: the refusal's stable reason (``expired``, ``bad_issuer``...), ``ok`` if accepted.
        provider: the provider that decided, when one was chosen.
        status: the HTTP status the refusal is answered with (200 when accepted).
    """

    outcome: Literal["accepted", "refused"]
    reason: str
    provider: str | None
    status: int = 200


@dataclass(frozen=True, slots=True)
class KeyFetch:
    """A key fetch finished.

    Args:
        source: where the keys come from (a URL without userinfo or query).
        why: ``cold`` (no keys yet), ``expired`` (past their lifetime), ``refresh_ahead``
            (before they expire), ``unknown_kid`` (a token named a key we lack), ``manual``.
        result: ``ok`` or ``failed``.
        seconds: how long it took.
        keys: the keys now usable (0 when it failed).
        skipped: keys in the answer that were skipped (unusable).
        error: why it failed (for operators), empty when it did not.
    """

    source: str
    why: str
    result: Literal["ok", "failed"]
    seconds: float
    keys: int = 0
    skipped: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class RemoteCall:
    """A call to a provider's verification endpoint finished.

    Args:
        provider: the provider's name.
        outcome: ``accepted`` (it vouched), ``rejected`` (an answer about the token),
            or ``failed`` (an outage: timeout, 5xx, unreadable...).
        status: the upstream HTTP status, when there was one.
        seconds: how long it took.
    """

    provider: str
    outcome: Literal["accepted", "rejected", "failed"]
    status: int | None
    seconds: float


@dataclass(frozen=True, slots=True)
class BreakerChange:
    """A provider's circuit breaker opened or closed.

    Args:
        provider: the provider's name.
        state: ``open`` (calls are refused with 503 for a while) or ``closed``.
    """

    provider: str
    state: Literal["open", "closed"]


Event = Decision | KeyFetch | RemoteCall | BreakerChange
