"""Credential extraction: Bearer, x-api-key, the opt-in cookie, and ambiguous requests."""

from __future__ import annotations

from typing import Any

import pytest

from authgate import InvalidRequest
from authgate.extract import (
    Credential,
    credential_from_asgi,
    credential_from_environ,
    credential_from_headers,
)

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"

FOUND: list[Any] = [
    pytest.param([("authorization", f"Bearer {TOKEN}")], ("bearer", TOKEN), id="bearer"),
    pytest.param([("Authorization", f"bearer {TOKEN}")], ("bearer", TOKEN), id="scheme-lowercase"),
    pytest.param([("authorization", f"BEARER  {TOKEN}")], ("bearer", TOKEN), id="two-spaces"),
    pytest.param([("x-api-key", "sk_live_abc")], ("api_key", "sk_live_abc"), id="api-key"),
    pytest.param([("X-Api-Key", "pk_test_1")], ("api_key", "pk_test_1"), id="api-key-any-case"),
    pytest.param([("authorization", "Basic dXNlcjpwYXNz")], None, id="basic-is-not-ours"),
    pytest.param(
        [("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", "k1")],
        ("api_key", "k1"),
        id="basic-and-key",
    ),
    pytest.param([("accept", "application/json")], None, id="nothing"),
    pytest.param([("cookie", f"session={TOKEN}")], None, id="cookie-not-enabled"),
]


@pytest.mark.parametrize(("headers", "expected"), FOUND)
def test_credentials_found(
    headers: list[tuple[str, str]], expected: tuple[str, str] | None
) -> None:
    """Each header set yields the expected credential, or none."""
    found = credential_from_headers(headers)
    assert ((found.kind, found.value) if found else None) == expected
    assert found is None or found.proof is None


REFUSED: list[Any] = [
    pytest.param(
        [("authorization", "Bearer a"), ("authorization", "Bearer b")],
        "several",
        id="two-authorization",
    ),
    pytest.param([("x-api-key", "a"), ("x-api-key", "b")], "several", id="two-api-keys"),
    pytest.param([("authorization", "Bearer")], "empty", id="bearer-no-value"),
    pytest.param([("authorization", "Bearer   ")], "empty", id="bearer-blank"),
    pytest.param([("authorization", "Bearer a b")], "one token", id="two-values"),
    pytest.param([("authorization", "Bearer a,b")], "one token", id="comma"),
    pytest.param([("authorization", "Bearer tök")], "one token", id="non-ascii"),
    pytest.param(
        [("authorization", f"Bearer {TOKEN}"), ("x-api-key", "k")], "not both", id="bearer-and-key"
    ),
    pytest.param([("x-api-key", "  ")], "empty", id="empty-key"),
    pytest.param([("x-api-key", "a b")], "visible ASCII", id="key-with-space"),
]


@pytest.mark.parametrize(("headers", "fragment"), REFUSED)
def test_ambiguous_or_malformed_requests(headers: list[tuple[str, str]], fragment: str) -> None:
    """Ambiguity is a 400 invalid_request naming the problem, never echoing the value."""
    with pytest.raises(InvalidRequest, match=fragment) as caught:
        credential_from_headers(headers)
    assert caught.value.status == 400
    assert "tök" not in caught.value.message


def test_cookie_is_opt_in() -> None:
    """With cookie_name set, a Bearer token may come from that cookie; headers still win."""
    headers = [("cookie", f"theme=dark; access_token={TOKEN}; x=1")]
    assert credential_from_headers(headers, cookie_name="access_token") == Credential(
        "bearer", TOKEN
    )
    both = [*headers, ("authorization", "Bearer other")]
    assert credential_from_headers(both, cookie_name="access_token") == Credential(
        "bearer", "other"
    )
    assert (
        credential_from_headers([("cookie", "access_token=")], cookie_name="access_token") is None
    )


def test_a_cookie_set_twice_with_two_values_is_ambiguous() -> None:
    """Two values for the token cookie (one tossed in from a sibling domain or set on another
    path) are a 400, whichever comes first; the same value twice, or the cookie split over
    several Cookie headers (HTTP/2), is read."""
    other = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtIn0.b3RoZXI"
    for first, second in ((TOKEN, other), (other, TOKEN)):
        tossed = [("cookie", f"access_token={first}; theme=dark; access_token={second}")]
        with pytest.raises(InvalidRequest, match="one access_token cookie") as caught:
            credential_from_headers(tossed, cookie_name="access_token")
        assert caught.value.status == 400
        assert first not in caught.value.message
        split = [("cookie", f"access_token={first}"), ("cookie", f"access_token={second}")]
        with pytest.raises(InvalidRequest, match="one access_token cookie"):
            credential_from_headers(split, cookie_name="access_token")
        environ = {"HTTP_COOKIE": f"access_token={first}; access_token={second}"}
        with pytest.raises(InvalidRequest, match="one access_token cookie"):
            credential_from_environ(environ, cookie_name="access_token")
    same = [("cookie", f"access_token={TOKEN}; access_token={TOKEN}")]
    assert credential_from_headers(same, cookie_name="access_token") == Credential("bearer", TOKEN)
    split = [("cookie", "theme=dark"), ("cookie", f"access_token={TOKEN}")]
    assert credential_from_headers(split, cookie_name="access_token") == Credential("bearer", TOKEN)


def test_asgi_raw_headers() -> None:
    """Raw ASGI header pairs are scanned once, as bytes."""
    raw = [(b"host", b"x"), (b"authorization", f"Bearer {TOKEN}".encode())]
    assert credential_from_asgi(raw) == Credential("bearer", TOKEN)


def test_environ_and_query_string() -> None:
    """WSGI reads HTTP_AUTHORIZATION / HTTP_X_API_KEY; the query string is never a source."""
    environ = {"HTTP_X_API_KEY": "k1", "QUERY_STRING": f"access_token={TOKEN}"}
    assert credential_from_environ(environ) == Credential("api_key", "k1")
    assert credential_from_environ({"QUERY_STRING": f"access_token={TOKEN}"}) is None


def test_credential_repr_hides_the_value() -> None:
    """A credential's repr gives its kind and length only."""
    text = repr(Credential("bearer", TOKEN))
    assert TOKEN not in text
    assert "bearer" in text
