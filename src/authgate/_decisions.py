"""One log record per refusal, on ``authgate.decisions``: why, in one line an operator can act on.

The record's fields are attributes prefixed ``authgate_`` (a JSON formatter picks them up):
``reason``, ``status``, ``provider``, ``alg``, ``kid``, ``iss``, ``expected_iss``, ``aud``,
``expected_aud``, ``skew``, ``path`` and ``fingerprint`` (the first 8 bytes of the SHA-256 of
the credential, as 16 hex characters: enough to correlate, useless to replay). Values read
from the token are unverified and attacker-chosen: they are escaped and truncated. Never the
token, an API key, a secret or an ``Authorization`` value.

A flood cannot flood the log: per reason, at most ``burst`` records per ``window`` seconds;
the rest are counted and reported by one "N more suppressed" line when the window ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ._codec import sha256
from .errors import AuthGateError, ExpiredToken, NotYetValid
from .extract import Credential

if TYPE_CHECKING:
    import logging

__all__ = ["LOGGER", "Refusals", "explain", "fingerprint", "record_fields"]

LOGGER: Final = "authgate.decisions"
_MAX_FIELD: Final = 120


def fingerprint(value: str) -> str:
    """The first 8 bytes of the SHA-256 of a credential, in hex (16 characters).

    Args:
        value: the credential value.
    """
    return sha256(value)[:8].hex()


def _safe(value: Any) -> str | None:
    """An unverified value for a log field: text, escaped, at most 120 characters."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    escaped = text[: _MAX_FIELD * 2].encode("unicode_escape").decode("ascii")
    return escaped[:_MAX_FIELD] + ("…" if len(escaped) > _MAX_FIELD else "")


class Refusals:
    """Logs refusals, rate-limited per reason.

    Args:
        level: the level of refusal records (``logging.INFO`` by default), an int or a name.
        burst: records per reason per window before suppression.
        window: the window, in seconds.
        clock: a monotonic clock.
    """

    def __init__(
        self,
        level: int | str = "INFO",
        *,
        burst: int = 20,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import logging

        resolved = logging.getLevelName(level) if isinstance(level, str) else level
        if not isinstance(resolved, int) or isinstance(resolved, bool):
            from .errors import ConfigurationError

            raise ConfigurationError(f"refusal_log_level must be a logging level, not {level!r}")
        self.level = resolved
        self.burst = burst
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, list[float]] = {}  # reason -> [window start, logged, dropped]
        self._logger: logging.Logger = logging.getLogger(LOGGER)

    def refused(
        self,
        exc: AuthGateError,
        credential: Credential | None,
        *,
        path: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Log one refusal (unless its reason is being suppressed).

        Args:
            exc: the refusal.
            credential: the credential refused, when there was one.
            path: the request path, when known.
            provider: the provider that refused, when known (else from ``exc.context``).
        """
        logger = self._logger
        if not logger.isEnabledFor(self.level):
            return
        reason = exc.reason
        summaries, allowed = self._admit(reason)
        for line in summaries:
            logger.log(self.level, "%s", line, extra={"authgate_reason": "suppressed"})
        if not allowed:
            return
        fields = record_fields(exc, credential, path=path, provider=provider)
        logger.log(self.level, "%s", _message(exc, fields), extra=fields)

    def flush(self) -> None:
        """Log the pending "N more suppressed" lines now (``Authenticator.close()`` does)."""
        with self._lock:
            pending = [(r, int(s[2])) for r, s in self._windows.items() if s[2]]
            self._windows.clear()
        for reason, dropped in pending:
            self._logger.log(
                self.level,
                "authgate: %d more '%s' refusals suppressed",
                dropped,
                reason,
                extra={"authgate_reason": "suppressed"},
            )

    def _admit(self, reason: str) -> tuple[list[str], bool]:
        now = self._clock()
        summaries = []
        with self._lock:
            for other, state in list(self._windows.items()):
                if now - state[0] >= self.window:
                    if state[2]:
                        summaries.append(
                            f"authgate: {int(state[2])} more '{other}' refusals suppressed "
                            f"in the last {self.window:g} s"
                        )
                    del self._windows[other]
            state = self._windows.setdefault(reason, [now, 0, 0])
            if state[1] < self.burst:
                state[1] += 1
                return summaries, True
            state[2] += 1
            return summaries, False


def explain(exc: AuthGateError, credential: Credential | None) -> str:
    """The line a refusal's log record carries (the CLI prints it too).

    Args:
        exc: the refusal.
        credential: the credential refused, when there was one.
    """
    return _message(exc, record_fields(exc, credential))


def record_fields(
    exc: AuthGateError,
    credential: Credential | None,
    *,
    path: str | None = None,
    provider: str | None = None,
) -> dict[str, Any]:
    """The ``authgate_*`` fields of a refusal's log record.

    Args:
        exc: the refusal.
        credential: the credential refused, when there was one.
        path: the request path, when known.
        provider: the provider that refused, when known (else from ``exc.context``).
    """
    context = exc.context
    fields: dict[str, Any] = {
        "authgate_reason": exc.reason,
        "authgate_status": exc.status,
        "authgate_provider": provider or context.get("provider"),
        "authgate_path": _safe(path),
        "authgate_fingerprint": fingerprint(credential.value) if credential else None,
        "authgate_alg": None,
        "authgate_kid": None,
        "authgate_iss": None,
        "authgate_aud": None,
        "authgate_expected_iss": _safe(context.get("expected_iss")),
        "authgate_expected_aud": _safe(context.get("expected_aud")),
        "authgate_skew": context.get("skew"),
    }
    if credential is not None and credential.is_jwt:
        from .jwt import unverified_claims, unverified_header

        try:
            header = unverified_header(credential.value.split(".", 1)[0])
        except AuthGateError:
            header = {}
        claims = unverified_claims(credential.value) or {}
        fields["authgate_alg"] = _safe(header.get("alg"))
        fields["authgate_kid"] = _safe(header.get("kid"))
        fields["authgate_iss"] = _safe(claims.get("iss"))
        fields["authgate_aud"] = _safe(claims.get("aud"))
    for name in ("iss", "aud"):  # what an endpoint answered about an opaque token
        if fields["authgate_" + name] is None:
            fields["authgate_" + name] = _safe(context.get(name))
    return fields


def _message(exc: AuthGateError, fields: dict[str, Any]) -> str:
    """One line that reads well on its own."""
    parts = [f"refused {exc.status} {exc.reason}: {exc.message}"]
    if exc.reason == "bad_issuer" and fields["authgate_iss"] is not None:
        expected = fields["authgate_expected_iss"]
        parts.append(
            f"iss {fields['authgate_iss']!r}"
            + (f", expected {expected!r}" if expected else " matches no configured issuer")
        )
    elif exc.reason == "bad_audience":
        expected = fields["authgate_expected_aud"]
        parts.append(
            f"aud {fields['authgate_aud']!r}, "
            + (f"expected {expected}" if expected else "and no audience is configured")
        )
    elif isinstance(exc, ExpiredToken | NotYetValid) and fields["authgate_skew"] is not None:
        parts.append(_skew(exc, float(fields["authgate_skew"])))
    elif exc.reason in ("alg_not_allowed", "key_not_found") and fields["authgate_alg"]:
        parts.append(f"alg {fields['authgate_alg']}, kid {fields['authgate_kid']!r}")
    elif exc.reason == "cross_origin":
        origin, site = _safe(exc.context.get("origin")), _safe(exc.context.get("fetch_site"))
        parts.append(f"origin {origin!r}, sec-fetch-site {site!r}")
    elif "max_token_lifetime" in exc.context:
        lifetime, longest = exc.context.get("lifetime"), exc.context["max_token_lifetime"]
        parts.append(
            f"it lives {lifetime} s, max_token_lifetime is {longest:.0f} s: raise it if the "
            "provider issues such tokens"
        )
    if exc.detail:
        parts.append(exc.detail)
    for label, key in (("provider", "authgate_provider"), ("path", "authgate_path")):
        if fields[key]:
            parts.append(f"{label} {fields[key]}")
    if fields["authgate_fingerprint"]:
        parts.append(f"credential {fields['authgate_fingerprint']}")
    return "; ".join(parts)


def _skew(exc: AuthGateError, skew: float) -> str:
    if isinstance(exc, ExpiredToken):
        return f"expired {skew:.0f} s ago (leeway included)"
    return f"valid only in {-skew:.0f} s (clock skew?)"
