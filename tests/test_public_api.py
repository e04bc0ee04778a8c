"""The public API stays honest: __all__ lists exactly what the package exports."""

from __future__ import annotations

import importlib

import pytest

import authgate


def test_all_is_honest() -> None:
    """Every name in authgate.__all__ exists, and every public attribute is in __all__."""
    assert len(set(authgate.__all__)) == len(authgate.__all__)
    for name in authgate.__all__:
        assert hasattr(authgate, name), name
    public = {
        name
        for name, value in vars(authgate).items()
        if not name.startswith("_") and not isinstance(value, type(authgate))
    }
    assert public == set(authgate.__all__)


@pytest.mark.parametrize(
    "module",
    ["authgate.asgi", "authgate.wsgi", "authgate.testing", "authgate.fastapi", "authgate.errors"],
)
def test_submodule_all_names_exist(module: str) -> None:
    """Each public submodule's __all__ names real attributes."""
    loaded = importlib.import_module(module)
    for name in loaded.__all__:
        assert hasattr(loaded, name), f"{module}.{name}"


def test_the_issue_api_names() -> None:
    """The names code outside this repository imports."""
    from authgate import Authenticator, InvalidToken, JWTProvider, JWTVerifier, KeySet, Principal
    from authgate.asgi import AuthGateMiddleware
    from authgate.wsgi import AuthGateWSGIMiddleware

    assert all(
        callable(x)
        for x in (Authenticator, InvalidToken, JWTProvider, JWTVerifier, KeySet, Principal)
    )
    assert AuthGateMiddleware.__name__ == "AuthGateMiddleware"
    assert AuthGateWSGIMiddleware.__name__ == "AuthGateWSGIMiddleware"


def test_core_never_imports_starlette() -> None:
    """The core modules import no web framework (asgi.py speaks raw ASGI)."""
    import ast
    from pathlib import Path

    src = Path(authgate.__file__).parent
    for path in src.rglob("*.py"):
        if path.name in ("fastapi.py", "testing.py"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("starlette", "fastapi", "flask", "django"), path
