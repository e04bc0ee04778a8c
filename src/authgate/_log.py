"""What authgate tells the operator: warnings through stdlib logging, and the redaction that
keeps secrets, credentials and internal URL details out of them.

authgate logs rarely (a failed key fetch, a skipped key, an upstream failure), so the logging
module is not imported with authgate; records go to the ``authgate.*`` loggers as usual.
Clients never see any of this: their bodies carry only stable, generic messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["error", "info", "safe_url", "upstream_summary", "warning"]

MAX_SUMMARY: Final = 200
"""The most characters of an upstream's own error text that reach a log record."""
FRAGMENT: Final = 16
"""A piece of the credential this long or longer, in any case, withholds the upstream text."""
_REDACTED: Final = "[redacted]"


def error(name: str, message: str, *args: Any) -> None:
    """Log ``message % args`` at ERROR on the ``name`` logger (see :func:`warning`).

    Args:
        name: the logger.
        message: a %-format string; never put a credential in it or its arguments.
        args: its arguments.
    """
    import logging

    logging.getLogger(name).error(message, *args)


def warning(name: str, message: str, *args: Any) -> None:
    """Log ``message % args`` at WARNING on the ``name`` logger.

    Args:
        name: the logger, e.g. ``authgate.keys``.
        message: a %-format string; never put a credential in it or its arguments.
        args: its arguments.
    """
    import logging

    logging.getLogger(name).warning(message, *args)


def info(name: str, message: str, *args: Any) -> None:
    """Log ``message % args`` at INFO on the ``name`` logger (see :func:`warning`).

    Args:
        name: the logger.
        message: a %-format string; never put a credential in it or its arguments.
        args: its arguments.
    """
    import logging

    logging.getLogger(name).info(message, *args)


def safe_url(url: str) -> str:
    """``url`` for a log line: no userinfo, no query, no fragment (they carry secrets).

    Args:
        url: a configured or discovered URL.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "(an unparseable URL)"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def upstream_summary(text: str, *, secrets: Iterable[str] = (), credential: str = "") -> str:
    """A bounded, sanitised summary of an upstream's own error text, safe to log.

    Our configured secrets are replaced, in any case; if the text holds any piece of the
    client's credential of :data:`FRAGMENT` characters or more, in any case, it is withheld
    whole (an upstream may echo the token, shifted, truncated or upper-cased).

    Args:
        text: what the upstream said.
        secrets: our own secrets (API keys, client secrets, their encodings).
        credential: the client's credential the exchange was about.
    """
    summary = "".join(c if " " <= c <= "~" else "?" for c in text[: 4 * MAX_SUMMARY])
    folded = summary.casefold()
    for secret in secrets:
        if len(secret) >= 4:
            start = folded.find(secret.casefold())
            while start != -1:
                summary = summary[:start] + _REDACTED + summary[start + len(secret) :]
                folded = summary.casefold()
                start = folded.find(secret.casefold())
    if credential and len(credential) >= FRAGMENT:
        wanted = credential.casefold()
        for i in range(len(folded) - FRAGMENT + 1):
            if folded[i : i + FRAGMENT] in wanted:
                return "(upstream text withheld: it quotes the credential)"
    return summary[:MAX_SUMMARY]
