"""Optional integrations name the extra that installs what they need."""

from __future__ import annotations

__all__ = ["extra_missing"]


def extra_missing(what: str, extra: str, exc: ModuleNotFoundError) -> ImportError:
    """The error for an integration imported without its extra: it names the package missing
    and the ``pip install`` that brings it.

    Args:
        what: the integration, as the user imported it (``authgate.testing``).
        extra: authgate's extra that installs what it needs (``testing``).
        exc: the import that failed.
    """
    return ImportError(
        f"{what} needs the {exc.name!r} package: pip install 'authgate[{extra}]'", name=exc.name
    )
