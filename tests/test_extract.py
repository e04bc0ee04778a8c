"""Credential extraction: Bearer, x-api-key, the opt-in cookie, and ambiguous requests."""

from __future__ import annotations

from typing import Any

import pytest

from authgate import CrossOrigin, InvalidRequest, TokenCookie
from authgate.extract import (
    Credential,
    credential_from_asgi,
    credential_from_environ,
    credential_from_headers,
)

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
COOKIE = TokenCookie("access_token")

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
    """With a TokenCookie, a Bearer token may come from that cookie; headers still win."""
    headers = [("cookie", f"theme=dark; access_token={TOKEN}; x=1")]
    assert credential_from_headers(headers, cookie=COOKIE) == Credential(
        "bearer", TOKEN, from_cookie=True
    )
    both = [*headers, ("authorization", "Bearer other")]
    assert credential_from_headers(both, cookie=COOKIE) == Credential("bearer", "other")
    assert credential_from_headers([("cookie", "access_token=")], cookie=COOKIE) is None


def test_a_cookie_set_twice_with_two_values_is_ambiguous() -> None:
    """Two values for the token cookie (one tossed in from a sibling domain or set on another
    path) are a 400, whichever comes first; the same value twice, or the cookie split over
    several Cookie headers (HTTP/2), is read."""
    other = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtIn0.b3RoZXI"
    for first, second in ((TOKEN, other), (other, TOKEN)):
        tossed = [("cookie", f"access_token={first}; theme=dark; access_token={second}")]
        with pytest.raises(InvalidRequest, match="one access_token cookie") as caught:
            credential_from_headers(tossed, cookie=COOKIE)
        assert caught.value.status == 400
        assert first not in caught.value.message
        split = [("cookie", f"access_token={first}"), ("cookie", f"access_token={second}")]
        with pytest.raises(InvalidRequest, match="one access_token cookie"):
            credential_from_headers(split, cookie=COOKIE)
        environ = {"HTTP_COOKIE": f"access_token={first}; access_token={second}"}
        with pytest.raises(InvalidRequest, match="one access_token cookie"):
            credential_from_environ(environ, cookie=COOKIE)
    same = [("cookie", f"access_token={TOKEN}; access_token={TOKEN}")]
    assert credential_from_headers(same, cookie=COOKIE) == Credential(
        "bearer", TOKEN, from_cookie=True
    )
    split = [("cookie", "theme=dark"), ("cookie", f"access_token={TOKEN}")]
    assert credential_from_headers(split, cookie=COOKIE) == Credential(
        "bearer", TOKEN, from_cookie=True
    )


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


FROM_COOKIE = Credential("bearer", TOKEN, from_cookie=True)
SAME_SITE: list[Any] = [
    pytest.param("GET", [("sec-fetch-site", "cross-site")], id="a-safe-method-from-anywhere"),
    pytest.param("HEAD", [("origin", "https://evil.example")], id="head"),
    pytest.param("OPTIONS", [("origin", "https://evil.example")], id="options"),
    pytest.param("POST", [("sec-fetch-site", "same-origin")], id="fetch-metadata-same-origin"),
    pytest.param("POST", [("sec-fetch-site", "none")], id="typed-by-the-user"),
    pytest.param("POST", [], id="no-browser-headers-no-browser"),
    pytest.param(
        "POST",
        [("origin", "https://api.example.com"), ("host", "api.example.com")],
        id="an-old-browser-same-origin",
    ),
    pytest.param(
        "DELETE",
        [("origin", "https://APP.example.com"), ("sec-fetch-site", "same-site")],
        id="a-trusted-origin",
    ),
    pytest.param(
        "POST",
        [("origin", "http://localhost:8080"), ("host", "api.example.com")],
        id="a-trusted-origin-with-its-port",
    ),
]
CROSS_SITE: list[Any] = [
    pytest.param("POST", [("sec-fetch-site", "cross-site")], id="fetch-metadata-cross-site"),
    pytest.param(
        "POST",
        [("sec-fetch-site", "same-site"), ("origin", "https://blog.example.com")],
        id="a-sibling-host-is-another-origin",
    ),
    pytest.param(
        "PUT",
        [("origin", "https://evil.example"), ("host", "api.example.com")],
        id="an-old-browser-cross-origin",
    ),
    pytest.param("PATCH", [("origin", "null"), ("host", "api.example.com")], id="origin-null"),
    pytest.param("post", [("sec-fetch-site", "cross-site")], id="a-method-in-lower-case"),
    pytest.param("", [("sec-fetch-site", "cross-site")], id="unknown-method-or-websocket"),
    pytest.param(
        "POST",
        [("sec-fetch-site", "same-origin"), ("sec-fetch-site", "cross-site")],
        id="two-answers-neither-believed",
    ),
    pytest.param(
        "POST",
        [("origin", "https://api.example.com"), ("origin", "https://evil.example")],
        id="two-origins",
    ),
    pytest.param(
        "POST",
        [
            ("origin", "https://evil.example"),
            ("host", "api.example.com"),
            ("sec-fetch-site", "cross-site"),
        ],
        id="an-untrusted-origin",
    ),
]
TRUSTING = TokenCookie(
    "access_token",
    trusted_origins=["https://App.Example.com:443/", "http://localhost:8080"],  # as browsers
)  # send it: https://app.example.com (no default port, lower case)


def _environ(method: str, headers: list[tuple[str, str]]) -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "HTTP_COOKIE": f"access_token={TOKEN}"}
    for name, value in headers:  # WSGI servers join a repeated header's values with commas
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


@pytest.mark.parametrize(("method", "headers"), SAME_SITE)
def test_a_cookie_token_is_read_on_requests_from_the_apps_own_pages(
    method: str, headers: list[tuple[str, str]]
) -> None:
    """Safe methods, same-origin requests (Fetch Metadata, or Origin against Host from an old
    browser), requests from no browser, and trusted origins read the cookie's token."""
    pairs = [("cookie", f"access_token={TOKEN}"), *headers]
    assert credential_from_headers(pairs, TRUSTING, method=method) == FROM_COOKIE
    assert credential_from_environ(_environ(method, headers), TRUSTING) == FROM_COOKIE


@pytest.mark.parametrize(("method", "headers"), CROSS_SITE)
def test_a_cookie_token_is_refused_on_requests_another_site_may_have_sent(
    method: str, headers: list[tuple[str, str]]
) -> None:
    """Cross-site request forgery: a browser sends the cookie with a form another site posts;
    such a request is a 403 naming the fix, before any verification."""
    pairs = [("cookie", f"access_token={TOKEN}"), *headers]
    with pytest.raises(CrossOrigin, match="from the access_token cookie") as caught:
        credential_from_headers(pairs, TRUSTING, method=method)
    assert caught.value.status == 403
    assert caught.value.reason == "cross_origin"
    assert TOKEN not in caught.value.message
    with pytest.raises(CrossOrigin):
        credential_from_environ(_environ(method, headers), TRUSTING)


def test_the_cross_site_rule_concerns_only_the_cookie() -> None:
    """A header credential is never sent by a browser on its own: no origin rule applies."""
    cross = [("sec-fetch-site", "cross-site"), ("cookie", f"access_token={TOKEN}")]
    found = credential_from_headers(
        [*cross, ("authorization", f"Bearer {TOKEN}")], COOKIE, method="POST"
    )
    assert found == Credential("bearer", TOKEN)
    assert credential_from_headers([*cross, ("x-api-key", "k")], COOKIE, method="POST") == (
        Credential("api_key", "k")
    )
    # without a TokenCookie the cookie is no credential, so no rule either
    assert credential_from_headers(cross, method="POST") is None
