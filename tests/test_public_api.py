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
    [
        "authgate.asgi",
        "authgate.wsgi",
        "authgate.testing",
        "authgate.fastapi",
        "authgate.errors",
        "authgate.providers",
    ],
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


def test_every_public_answer_checks_the_binding() -> None:
    """The cache lookup answers before a token's proof or certificate is checked: it is not
    public, so no caller takes it for an answer. The public answers are these."""
    from authgate import Authenticator

    answers = {"authenticate", "authenticate_async", "verify_credential", "verify_credential_async"}
    public = {name for name in vars(Authenticator) if not name.startswith("_")}
    assert answers <= public
    assert not {"cached", "lookup", "get"} & public


def test_core_never_imports_starlette() -> None:
    """The core modules import no web framework (asgi.py speaks raw ASGI); only the
    integrations do (fastapi.py, django.py, drf.py, flask.py)."""
    import ast
    from pathlib import Path

    src = Path(authgate.__file__).parent
    for path in src.rglob("*.py"):
        if path.name in ("fastapi.py", "django.py", "drf.py", "flask.py"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("starlette", "fastapi", "flask", "django"), path


# What code outside this repository imported from authgate before the architecture issue
# (authgate.__all__ of 0.1.0): every name must stay importable.
NAMES_BEFORE = [
    "ANONYMOUS",
    "APIKey",
    "APIKeyProvider",
    "APIKeyRing",
    "AlgorithmNotAllowed",
    "Anonymous",
    "AuthGateError",
    "Authenticator",
    "AuthonProvider",
    "BackOfficeProvider",
    "BadAudience",
    "BadIssuer",
    "BadSignature",
    "ConfigurationError",
    "Credential",
    "ExpiredToken",
    "Forbidden",
    "InsufficientScope",
    "IntrospectionProvider",
    "InvalidRequest",
    "InvalidToken",
    "JWKSKeySource",
    "JWTProvider",
    "JWTVerifier",
    "Key",
    "KeyFetchPolicy",
    "KeyNotFound",
    "KeySet",
    "KeySourceUnavailable",
    "MalformedToken",
    "MissingClaim",
    "MoriProvider",
    "NotYetValid",
    "OIDCKeySource",
    "Principal",
    "Provider",
    "ProviderUnavailable",
    "RemoteKeySource",
    "RemotePolicy",
    "EndpointProvider",
    "RevokedToken",
    "ServiceUnavailable",
    "TokenTooLarge",
    "UnsupportedHeader",
    "VeryChatProvider",
    "hash_api_key",
]


def test_every_name_exported_before_is_still_exported() -> None:
    """No name of the first release's API is dropped."""
    assert set(NAMES_BEFORE) <= set(authgate.__all__)


def test_no_two_names_for_one_thing() -> None:
    """Each exported object has one name: no alias, no compatibility spelling."""
    seen: dict[int, str] = {}
    for name in authgate.__all__:
        value = getattr(authgate, name)
        assert id(value) not in seen, f"{name} is {seen[id(value)]}"
        seen[id(value)] = name
    from authgate import keys

    assert "b64url_decode" not in keys.__all__  # lives in authgate._codec, once


def test_import_authgate_loads_neither_httpx_nor_asyncio() -> None:
    """A cold import leaves httpx and asyncio unimported until a remote source needs them."""
    import subprocess
    import sys

    probe = (
        "import sys, authgate;"
        "print(sorted(m for m in ('httpx', 'asyncio', 'logging', 'email.utils') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"


def test_no_private_attribute_of_httpx_or_httpcore_is_touched() -> None:
    """The sync deadline is bound through httpcore's public pool API, not by reaching into
    httpx's client (``_transport``, ``_mounts``, ``_pool``, ``_network_backend``)."""
    import re
    from pathlib import Path

    source = Path(authgate.__file__).parent
    private = re.compile(r"\._(transport|mounts|pool|network_backend)\b")
    found = [
        f"{path.name}:{number}"
        for path in sorted(source.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert found == []


@pytest.mark.parametrize(
    ("integration", "package", "extra"),
    [
        ("authgate.testing", "jwt", "testing"),
        ("authgate.fastapi", "fastapi", "fastapi"),
        ("authgate.prometheus", "prometheus_client", "prometheus"),
        ("authgate.otel", "opentelemetry", "otel"),
        ("authgate.redis", "redis", "redis"),
    ],
)
def test_an_integration_without_its_extra_names_the_extra(
    integration: str, package: str, extra: str
) -> None:
    """Imported without its package (hidden in a fresh interpreter), each integration says
    which extra to install, not just "No module named ..."."""
    import subprocess
    import sys

    program = f"import sys; sys.modules[{package!r}] = None; import {integration}"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert f"ImportError: {integration} needs the {package!r} package" in done.stderr
    assert f"pip install 'authgate[{extra}]'" in done.stderr
