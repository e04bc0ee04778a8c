"""Warnings to the operator, through stdlib logging, imported only when something is logged.

authgate logs rarely (a failed key fetch, a skipped key, an upstream failure), so the logging
module is not imported with authgate; records go to the ``authgate.*`` loggers as usual.
"""

from __future__ import annotations

from typing import Any

__all__ = ["warning"]


def warning(name: str, message: str, *args: Any) -> None:
    """Log ``message % args`` at WARNING on the ``name`` logger.

    Args:
        name: the logger, e.g. ``authgate.keys``.
        message: a %-format string; never put a credential in it or its arguments.
        args: its arguments.
    """
    import logging

    logging.getLogger(name).warning(message, *args)
