"""authgate.django and authgate.drf in a real Django project (tests/django_site.py) under real
servers: gunicorn sync and gthread and granian (WSGI, the middleware's sync path) and uvicorn
(ASGI, its async path). Valid, missing, expired, forged and revoked tokens and an API key; plain views,
login_required, permission_required, the mixins, CSRF, a DRF viewset with IsAuthenticated and the
scope permission, the OpenAPI scheme, and Django's own session users beside token users."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authgate.testing import DPoPClient, SigningKey, TokenFactory, free_port

from .processes import served

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "https://django.test"  # tests/django_site.py's (not imported: it configures Django)
DOWN_ISSUER = "https://down.test"  # its keys are at DOWN_JWKS, where nothing listens
DOWN_JWKS = f"http://127.0.0.1:{free_port()}/jwks"
API_KEY = "dj_live_0123456789abcdefghijklmnop"
SECRET = secrets.token_urlsafe(32)

SERVERS = {
    "gunicorn-sync": ["-m", "gunicorn", "-w", "2", "-k", "sync", "tests.django_site:wsgi()"],
    "gunicorn-gthread": [
        "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4", "tests.django_site:wsgi()"
    ],
    "uvicorn": ["-m", "uvicorn", "--factory", "tests.django_site:asgi", "--log-level", "warning"],
    "granian-wsgi": ["-m", "granian", "--interface", "wsgi", "--factory", "--workers", "1",
                     "--blocking-threads", "4", "--host", "127.0.0.1", "tests.django_site:wsgi"],
}  # fmt: skip


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("django") / "db.sqlite3"
    env = {**os.environ, "AUTHGATE_TEST_DB": str(path), "AUTHGATE_TEST_SECRET": SECRET}
    subprocess.run(
        [sys.executable, "-m", "tests.django_site", "prepare"], cwd=ROOT, env=env, check=True
    )
    return path


def site_env(database: Path, port: int) -> dict[str, str]:
    return {"AUTHGATE_TEST_DB": str(database), "AUTHGATE_TEST_SECRET": SECRET,
            "AUTHGATE_TEST_CACHE": str(database.parent / f"cache-{port}"),
            "AUTHGATE_TEST_DOWN_JWKS": DOWN_JWKS}  # fmt: skip


@pytest.fixture(scope="module", params=list(SERVERS))
def base(request: pytest.FixtureRequest, database: Path) -> Iterator[str]:
    port = free_port()
    args = list(SERVERS[request.param])
    args += ["--bind", f"127.0.0.1:{port}"] if "gunicorn" in args else ["--port", str(port)]
    with served(args, port, site_env(database, port)) as url:
        yield url


@pytest.fixture(scope="module")
def drf_only(database: Path) -> Iterator[str]:
    """The site without authgate's Django middleware: DRF's authentication class alone."""
    port = free_port()
    args = [*SERVERS["gunicorn-sync"], "--bind", f"127.0.0.1:{port}"]
    with served(args, port, {**site_env(database, port), "AUTHGATE_TEST_DRF_ONLY": "1"}) as url:
        yield url


@pytest.fixture(scope="module")
def tokens() -> TokenFactory:
    return TokenFactory(key=SigningKey("HS256", private=SECRET.encode()), issuer=ISSUER)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_token_is_djangos_user(base: str, tokens: TokenFactory) -> None:
    token = tokens.mint("alice", scope="orders:read")
    for _ in range(2):  # the second from the cache
        answer = httpx.get(base + "/whoami", headers=bearer(token))
        assert answer.json() == {
            "user": "alice",
            "authenticated": True,
            "kind": "TokenUser",
            "via": "token",
        }
    key = httpx.get(base + "/whoami", headers={"x-api-key": API_KEY}).json()
    assert (key["user"], key["kind"]) == ("billing-service", "TokenUser")
    anonymous = httpx.get(base + "/whoami").json()
    assert anonymous == {
        "user": "",
        "authenticated": False,
        "kind": "AnonymousUser",
        "via": "django",
    }


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [("expired", 401, "expired"), ("forged", 401, "signature"), ("garbage", 401, "base64url")],
)
def test_bad_tokens_get_rfc_6750_answers(
    kind: str, status: int, reason: str, base: str, tokens: TokenFactory
) -> None:
    if kind == "expired":
        token = tokens.mint("alice", exp=int(time.time()) - 60)
    elif kind == "forged":
        token = TokenFactory("HS256", issuer=ISSUER).mint("alice")
    else:
        token = "a.b.c"
    answer = httpx.get(base + "/whoami", headers=bearer(token))
    assert answer.status_code == status
    assert reason in answer.json()["message"]
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token"')
    assert 'DPoP realm="api"' in challenge
    assert answer.headers["cache-control"] == "no-store"


def test_two_credentials_are_a_400(base: str, tokens: TokenFactory) -> None:
    headers = {**bearer(tokens.mint("alice")), "x-api-key": API_KEY}
    answer = httpx.get(base + "/whoami", headers=headers)
    assert answer.status_code == 400
    assert 'error="invalid_request"' in answer.headers["www-authenticate"]


def test_login_required_and_permissions(base: str, tokens: TokenFactory) -> None:
    reader = bearer(tokens.mint("alice", scope="orders:read"))
    other = bearer(tokens.mint("bob", scope="profile"))
    assert httpx.get(base + "/private", headers=other).json() == {"user": "bob"}
    nobody = httpx.get(base + "/private")
    assert (nobody.status_code, nobody.headers["location"]) == (
        302,
        "/accounts/login/?next=/private",
    )
    for page in ("/orders", "/reports"):  # the decorator and the mixins
        assert httpx.get(base + page, headers=reader).json()["user"] == "alice"
        assert httpx.get(base + page, headers=other).status_code == 403


def test_a_header_token_needs_no_csrf_token_a_session_does(base: str, tokens: TokenFactory) -> None:
    answer = httpx.post(base + "/submit", headers=bearer(tokens.mint("alice")))
    assert answer.json() == {"submitted": True, "user": "alice"}
    with httpx.Client(base_url=base) as browser:
        assert browser.get("/session-login").json() == {"logged_in": "admin"}
        assert browser.post("/submit").status_code == 403  # Django's CSRF check still applies


def test_a_cookie_token_needs_djangos_csrf_token_on_django_and_drf_views(
    base: str, tokens: TokenFactory
) -> None:
    """A token from the opt-in cookie is sent by the browser on its own: Django's CSRF check
    applies to it on a Django view and, as DRF's SessionAuthentication does, on a DRF view
    (DRF's views are CSRF-exempt); a Basic Authorization header beside it changes nothing."""
    same_origin = {"sec-fetch-site": "same-origin"}
    with httpx.Client(base_url=base, headers=same_origin) as browser:
        browser.cookies.set("access_token", tokens.mint("carol", scope="orders:read"))
        assert browser.get("/whoami").json()["user"] == "carol"
        for page in ("/submit", "/api/orders/"):
            refused = browser.post(page)
            assert refused.status_code == 403, page
            assert "CSRF" in refused.text, page
            basic = browser.post(page, headers={"authorization": "Basic YTpi"})
            assert basic.status_code == 403, page  # a browser may send Basic on its own too
        csrf = browser.get("/csrf").json()["token"]
        posted = browser.post("/submit", headers={"x-csrftoken": csrf})
        assert posted.json() == {"submitted": True, "user": "carol"}
        ordered = browser.post("/api/orders/", headers={"x-csrftoken": csrf})
        assert (ordered.status_code, ordered.json()) == (201, {"ordered": True, "user": "carol"})


def test_a_cookie_token_is_refused_on_a_request_from_another_site(
    base: str, tokens: TokenFactory
) -> None:
    """Even with Django's CSRF token at hand, another site's page gets a 403 from authgate for
    the cookie's token; the header token of the same request is no browser's doing."""
    with httpx.Client(base_url=base) as browser:
        browser.cookies.set("access_token", tokens.mint("carol"))
        csrf = browser.get("/csrf").json()["token"]
        forged = {"sec-fetch-site": "cross-site", "x-csrftoken": csrf}
        for page in ("/submit", "/api/orders/", "/whoami"):
            refused = browser.post(page, headers=forged)
            assert refused.status_code == 403, page
            assert refused.json()["message"].startswith("a token from the access_token cookie")
        dave = bearer(tokens.mint("dave", scope="orders:read"))
        header = browser.post("/api/orders/", headers={**forged, **dave})
        assert header.json()["user"] == "dave"


def test_session_users_keep_working_beside_token_users(base: str, tokens: TokenFactory) -> None:
    """Without a token, Django's own authentication applies (the admin's users); with one, the
    request is the token's user, whatever session comes with it."""
    with httpx.Client(base_url=base) as browser:
        browser.get("/session-login")
        mine = browser.get("/whoami").json()
        assert (mine["user"], mine["kind"], mine["via"]) == ("admin", "User", "django")
        assert browser.get("/admin/").status_code == 200  # the admin, as its superuser
        token = browser.get("/whoami", headers=bearer(tokens.mint("alice"))).json()
        assert (token["user"], token["via"]) == ("alice", "token")
    as_token = httpx.get(base + "/admin/", headers=bearer(tokens.mint("alice")))
    assert as_token.status_code == 302  # a token user is no staff member


def test_a_revoked_token_is_refused(base: str, tokens: TokenFactory) -> None:
    token = tokens.mint("alice")
    assert httpx.get(base + "/whoami", headers=bearer(token)).status_code == 200
    # no shared store here: each worker holds its own denylist, so sign out until every worker
    # answered (the fleet's shared revocations are tests/test_fleet.py's)
    for _ in range(50):
        httpx.post(base + "/signout", content=token)
        answers = [httpx.get(base + "/whoami", headers=bearer(token)) for _ in range(10)]
        if all(a.status_code == 401 for a in answers):
            break
    assert {a.json()["message"] for a in answers} == {"the token has been revoked"}


def test_drf_viewset_with_the_scope_permission(base: str, tokens: TokenFactory) -> None:
    reader = bearer(tokens.mint("alice", scope="orders:read"))
    ok = httpx.get(base + "/api/orders/", headers=reader)
    assert ok.json() == {"orders": [], "user": "alice"}
    assert httpx.get(base + "/api/orders/", headers={"x-api-key": API_KEY}).status_code == 200
    other = httpx.get(base + "/api/orders/", headers=bearer(tokens.mint("bob", scope="x")))
    assert other.status_code == 403
    assert other.json() == {"detail": "missing scope: orders:read"}
    missing = httpx.get(base + "/api/orders/")
    assert missing.status_code == 401  # not DRF's 403: the challenge says how to authenticate
    assert missing.headers["www-authenticate"].startswith('Bearer realm="api"')
    expired = httpx.get(base + "/api/orders/", headers=bearer(tokens.mint("a", exp=1)))
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    role = httpx.get(base + "/api/admin-only/", headers=reader)
    assert (role.status_code, role.json()) == (403, {"detail": "missing role: admin"})
    admin = bearer(tokens.mint("root", roles=["admin"]))
    assert httpx.get(base + "/api/admin-only/", headers=admin).json() == {"ok": True}


def test_drf_throttles_count_each_token_user_apart(base: str, tokens: TokenFactory) -> None:
    """DRF's UserRateThrottle keys on request.user.pk: one user's requests spend only that
    user's allowance (3 an hour here), in a cache every worker shares."""
    alice, bob = bearer(tokens.mint("alice")), bearer(tokens.mint("bob"))
    statuses = [httpx.get(base + "/api/throttled/", headers=alice).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    answer = httpx.get(base + "/api/throttled/", headers=bob)
    assert (answer.status_code, answer.json()) == (200, {"user": "bob"})


def test_code_reading_a_users_groups_works_for_a_token_user(
    base: str, tokens: TokenFactory
) -> None:
    """A token user has no groups and no database permissions (empty managers, as Django's
    AnonymousUser), so views written for Django's users do not fail on it."""
    answer = httpx.get(base + "/groups", headers=bearer(tokens.mint("alice")))
    assert answer.json() == {"groups": [], "in_admins": False, "user_permissions": 0}
    assert httpx.get(base + "/groups").json() == {  # AnonymousUser, as Django answers
        "groups": [],
        "in_admins": False,
        "user_permissions": 0,
    }


def test_drf_spectacular_names_the_bearer_scheme(base: str) -> None:
    schema = httpx.get(base + "/api/schema", params={"format": "json"}).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert {"bearerAuth": []} in schema["paths"]["/api/orders/"]["get"]["security"]


def test_drf_alone_answers_as_the_middleware_does(
    base: str, drf_only: str, tokens: TokenFactory
) -> None:
    """DRF's authentication class without authgate's middleware: a bad token is the 401 with
    its challenge (not DRF's 403), an outage the 503 with Retry-After (DRF turned it into a
    403: its AuthenticationFailed without a challenge), a server nonce goes out as
    ``DPoP-Nonce`` (DRF's handler sends no such header) and a proof with it passes."""
    down = TokenFactory("ES256", issuer=DOWN_ISSUER).mint("alice", scope="orders:read")
    for site in (base, drf_only):
        url = site + "/api/orders/"
        forged = httpx.get(url, headers=bearer(TokenFactory("HS256", issuer=ISSUER).mint("a")))
        assert forged.status_code == 401
        assert forged.headers["www-authenticate"].startswith('Bearer realm="api", error=')
        outage = httpx.get(url, headers=bearer(down))
        assert outage.status_code == 503, site
        assert int(outage.headers["retry-after"]) >= 1
        assert outage.headers["cache-control"] == "no-store"
        client = DPoPClient()
        token = tokens.mint("alice", scope="orders:read", cnf=client.cnf)
        first = httpx.get(url, headers=client.headers(token, "GET", url))
        assert first.status_code == 401
        assert 'error="use_dpop_nonce"' in first.headers["www-authenticate"]
        nonce = first.headers["dpop-nonce"]
        served = httpx.get(url, headers=client.headers(token, "GET", url, nonce=nonce))
        assert served.status_code == 200, served.text
        assert served.json()["user"] == "alice"


def test_drf_alone_behind_djangos_site_cache_serves_no_page_to_another_client(
    drf_only: str, tokens: TokenFactory
) -> None:
    """Django's site-wide cache answers before a DRF view authenticates: every DRF answer
    varies on the credential headers, so a page cached for an API key is not served to a
    request without it, nor one cached for a DPoP-bound token to its thief without the
    proof (Django's cache varies on ``Authorization`` alone by itself)."""
    url = drf_only + "/api/orders/"
    keyed = httpx.get(url, headers={"x-api-key": API_KEY})
    assert keyed.json()["user"] == "billing-service"
    assert {"x-api-key", "DPoP"} <= {v.strip() for v in keyed.headers["vary"].split(",")}
    assert httpx.get(url).status_code == 401
    client = DPoPClient()
    token = tokens.mint("carol", scope="orders:read", cnf=client.cnf)
    nonce = httpx.get(url, headers=client.headers(token, "GET", url)).headers["dpop-nonce"]
    proved = httpx.get(url, headers=client.headers(token, "GET", url, nonce=nonce))
    assert proved.json()["user"] == "carol"
    thief = {"authorization": f"DPoP {token}", "dpop": DPoPClient().proof("GET", url, token)}
    assert httpx.get(url, headers=thief).status_code == 401
    assert httpx.get(url, headers={"authorization": f"DPoP {token}"}).status_code == 401
