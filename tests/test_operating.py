"""Operating authgate: one log record per refusal that says why, key-fetch and breaker logs
once per transition, rate-limited refusal floods, and the events metrics are built on."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from authgate import (
    Authenticator,
    ClientAuth,
    IntrospectionProvider,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    KeyFetchPolicy,
    RemotePolicy,
)
from authgate._decisions import Refusals, fingerprint
from authgate.asgi import AuthGateMiddleware
from authgate.errors import ExpiredToken
from authgate.events import BreakerChange, Decision, Event, KeyFetch, RemoteCall
from authgate.extract import Credential
from authgate.testing import FakeIntrospection, LocalIssuer, TokenFactory, serve_asgi

from . import conftest
from .apps import starlette_app

ISSUER = "https://idp.example"


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory("HS256", issuer=ISSUER, audience="api://orders")


def auth_for(tokens: TokenFactory, **options: Any) -> Authenticator:
    verifier = JWTVerifier(
        tokens.keyset(), algorithms=["HS256"], issuer=ISSUER, audience="api://orders"
    )
    return Authenticator([JWTProvider("login", verifier)], **options)


def decisions(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "authgate.decisions"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def served(tokens: TokenFactory) -> Iterator[tuple[str, Authenticator]]:
    auth = auth_for(tokens)
    with serve_asgi(AuthGateMiddleware(starlette_app(), auth)) as base:
        yield base, auth


def test_a_trailing_slash_in_the_issuer_is_explained(
    served: tuple[str, Authenticator], tokens: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The case from the issue: 401 "issuer not accepted" for the client; one INFO record for
    the operator naming what was received and what was expected."""
    base, _ = served
    token = tokens.mint("ada", iss=ISSUER + "/")
    caplog.set_level(logging.INFO, logger="authgate.decisions")
    answer = httpx.get(base + "/whoami", headers=bearer(token))
    assert answer.status_code == 401
    (record,) = decisions(caplog)
    assert record.levelno == logging.INFO
    fields = {k: v for k, v in vars(record).items() if k.startswith("authgate_")}
    assert fields == {
        "authgate_reason": "bad_issuer",
        "authgate_status": 401,
        "authgate_provider": "login",
        "authgate_path": "/whoami",
        "authgate_fingerprint": fingerprint(token),
        "authgate_alg": "HS256",
        "authgate_kid": tokens.key.kid,
        "authgate_iss": ISSUER + "/",
        "authgate_aud": "api://orders",
        "authgate_expected_iss": ISSUER,
        "authgate_expected_aud": None,
        "authgate_skew": None,
    }
    assert re.fullmatch(r"[0-9a-f]{16}", fields["authgate_fingerprint"])
    assert record.getMessage() == (
        "refused 401 bad_issuer: the token issuer is not accepted; "
        "iss 'https://idp.example/', expected 'https://idp.example'; provider login; "
        f"path /whoami; credential {fingerprint(token)}"
    )


@pytest.mark.parametrize(
    ("claims", "reason", "says"),
    [
        ({"aud": "api://billing"}, "bad_audience", "aud 'api://billing', expected api://orders"),
        ({"exp": 1}, "expired", "expired"),
        ({"nbf": 4_000_000_000}, "not_yet_valid", "valid only in"),
    ],
)
def test_each_refusal_says_why_in_one_line(
    served: tuple[str, Authenticator],
    tokens: TokenFactory,
    caplog: pytest.LogCaptureFixture,
    claims: dict[str, Any],
    reason: str,
    says: str,
) -> None:
    base, _ = served
    caplog.set_level(logging.INFO, logger="authgate.decisions")
    assert httpx.get(base + "/whoami", headers=bearer(tokens.mint(**claims))).status_code == 401
    (record,) = decisions(caplog)
    assert record.authgate_reason == reason  # type: ignore[attr-defined]
    assert says in record.getMessage()


def test_requests_without_credentials_and_malformed_ones_are_logged(
    served: tuple[str, Authenticator], caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = served
    caplog.set_level(logging.INFO, logger="authgate.decisions")
    assert httpx.get(base + "/whoami").status_code == 401
    twice = [("authorization", "Bearer a"), ("authorization", "Bearer b")]
    assert httpx.get(base + "/whoami", headers=twice).status_code == 400
    reasons = [r.authgate_reason for r in decisions(caplog)]  # type: ignore[attr-defined]
    assert reasons == ["missing_credential", "invalid_request"]


def test_the_refusal_level_is_configurable(
    tokens: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    auth = auth_for(tokens, refusal_log_level="DEBUG")
    caplog.set_level(logging.DEBUG, logger="authgate.decisions")
    with pytest.raises(ExpiredToken):
        auth.authenticate(bearer(tokens.mint(exp=1)))
    (record,) = decisions(caplog)
    assert record.levelno == logging.DEBUG


@pytest.mark.parametrize("level", ["LOUD", True, None, 2.5])
def test_an_unknown_refusal_level_fails_at_construction(tokens: TokenFactory, level: Any) -> None:
    from authgate import ConfigurationError

    with pytest.raises(ConfigurationError, match="refusal_log_level must be a logging level"):
        auth_for(tokens, refusal_log_level=level)


def test_a_refusal_flood_is_rate_limited_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    refusals = Refusals(burst=3, window=10.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="authgate.decisions")
    for i in range(100):
        refusals.refused(ExpiredToken(), Credential("bearer", f"token-{i}"))
    assert len(decisions(caplog)) == 3
    now[0] = 11.0
    refusals.refused(ExpiredToken(), Credential("bearer", "later"))
    messages = [r.getMessage() for r in decisions(caplog)]
    assert messages[3] == "authgate: 97 more 'expired' refusals suppressed in the last 10 s"
    assert messages[4].startswith("refused 401 expired")
    for i in range(5):  # the window holds 3: two more logged, three suppressed, then flushed
        refusals.refused(ExpiredToken(), Credential("bearer", f"again-{i}"))
    refusals.flush()
    assert decisions(caplog)[-1].getMessage() == "authgate: 3 more 'expired' refusals suppressed"


def test_events_for_decisions(tokens: TokenFactory) -> None:
    seen: list[Event] = []
    auth = auth_for(tokens)
    auth.add_listener(seen.append)
    token = tokens.mint("ada")
    for _ in range(3):
        auth.authenticate(bearer(token))
    with pytest.raises(ExpiredToken):
        auth.authenticate(bearer(tokens.mint(exp=1)))
    assert seen == [
        Decision("accepted", "ok", "login"),
        Decision("refused", "expired", "login", 401),
    ]
    assert auth.stats.hits == 2
    assert auth.stats.misses == 2
    assert auth.stats.cached == 1


def test_a_listener_that_raises_is_removed_and_logged(
    tokens: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("metrics backend down")

    auth = auth_for(tokens)
    auth.add_listener(broken)
    assert auth.authenticate(bearer(tokens.mint("ada"))) is not None
    assert auth.authenticate(bearer(tokens.mint("bob"))) is not None
    warnings = [r.getMessage() for r in caplog.records if r.name == "authgate.events"]
    assert warnings == ["an event listener raised RuntimeError and was removed"]


def test_key_fetches_are_logged_and_reported_once_per_transition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cold fetch, unknown kid, an outage served from old keys (logged once however many
    fetches fail), and the recovery."""
    seen: list[Event] = []
    caplog.set_level(logging.INFO, logger="authgate.keys")
    with LocalIssuer("ES256") as issuer:
        source = JWKSKeySource(issuer.jwks_url, policy=KeyFetchPolicy(cooldown=0))
        verifier = JWTVerifier(source, algorithms=["ES256"], issuer=issuer.url)
        auth = Authenticator([JWTProvider("local", verifier)])
        auth.add_listener(seen.append)
        assert auth.authenticate(bearer(issuer.mint("a"))) is not None  # cold
        issuer.rotate()
        assert auth.authenticate(bearer(issuer.mint("b"))) is not None  # unknown kid
        issuer.fault = "down"
        for _ in range(3):  # three failed fetches while the old keys still serve
            source.refresh()
        issuer.fault = None
        source.refresh()
        auth.close()
        url = issuer.jwks_url
    fetches = [e for e in seen if isinstance(e, KeyFetch)]
    assert [(f.why, f.result, f.keys) for f in fetches] == [
        ("cold", "ok", 1),
        ("unknown_kid", "ok", 2),
        ("unknown_kid", "failed", 0),
        ("unknown_kid", "failed", 0),
        ("unknown_kid", "failed", 0),
        ("unknown_kid", "ok", 2),
    ]
    assert all(f.source == url and f.seconds >= 0 for f in fetches)
    messages = [r.getMessage() for r in caplog.records if r.name == "authgate.keys"]
    assert sum("serving the keys last fetched" in m for m in messages) == 1
    assert sum("are fresh again" in m for m in messages) == 1
    assert sum("(cold)" in m and "1 usable" in m for m in messages) == 1


def test_breaker_transitions_are_logged_once_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Event] = []
    with FakeIntrospection() as idp:
        provider = IntrospectionProvider(
            "idp",
            idp.introspection_url,
            auth=ClientAuth.basic(idp.client_id, idp.client_secret),
            policy=RemotePolicy(breaker_threshold=2, breaker_cooldown=0.0),
        )
        auth = Authenticator([provider])
        auth.add_listener(seen.append)
        idp.fault = "error"
        for i in range(4):
            with pytest.raises(Exception, match="cannot be reached"):
                auth.authenticate(bearer(idp.issue(f"u{i}")))
        idp.fault = None
        assert auth.authenticate(bearer(idp.issue("healed"))) is not None
        auth.close()
    changes = [e for e in seen if isinstance(e, BreakerChange)]
    assert changes == [BreakerChange("idp", "open"), BreakerChange("idp", "closed")]
    calls = [e for e in seen if isinstance(e, RemoteCall)]
    assert [(c.outcome, c.status) for c in calls] == [("failed", 500)] * 4 + [("accepted", 200)]
    messages = [r.getMessage() for r in caplog.records if r.name == "authgate.remote"]
    assert sum("the breaker is open" in m for m in messages) == 1
    assert sum("the breaker is closed" in m for m in messages) == 1


def test_the_suite_wide_credential_scan_can_fail() -> None:
    """The conftest scan finds a remembered secret inside a record (so its 0 means 0)."""
    token = TokenFactory("HS256", issuer=ISSUER).mint("leak")  # remembered by the wrapper
    conftest._RECORDS.append(f"oops {token} logged")
    try:
        assert conftest._leaks() == [f"oops {token} logged"[:300]]
    finally:
        conftest._RECORDS.pop()
    assert conftest._leaks() == []


def test_the_readmes_two_logging_lines_show_refusals_under_uvicorn() -> None:
    """Without configuring logging, uvicorn shows no authgate record; the README's two lines
    put each refusal on stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    from authgate.testing import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.logging_app:app", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process=process)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 401
        httpx.get(f"http://127.0.0.1:{port}/", headers={"authorization": "Bearer a.b.c"})
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    lines = stderr.decode()
    assert "refused 401 missing_credential" in lines
    assert "refused 401 malformed" in lines
