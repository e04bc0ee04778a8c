"""Fake identity providers speaking exactly their documented request and response shapes.

Each one refuses requests that do not carry the documented headers and body, so a test
against it proves the client sends what the real provider expects.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
import uuid
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .servers import Answer, FakeServer, json_answer
from .tokens import SigningKey, TokenFactory

__all__ = [
    "FakeAuth0",
    "FakeAuthon",
    "FakeCognito",
    "FakeFirebase",
    "FakeGoogle",
    "FakeIntrospection",
    "FakeOIDC",
    "FakeVeryChat",
]


def _bearer(headers: Message) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _unauthorized(message: str) -> Answer:
    return json_answer(401, {"statusCode": 401, "error": "Unauthorized", "message": message})


class FakeAuthon(FakeServer):
    """Authon's API: ``GET /v1/auth/token/verify`` (secret key + Bearer) and ``GET /v1/auth/me``.

    Access tokens are RS256 JWTs (15 minutes) whose public key is served at
    ``/.well-known/jwks.json`` (Authon does not document where; configure it explicitly).

    Args:
        project_id: the project the users belong to.
        secret_key: the ``sk_test_…`` key the verify endpoint requires.
    """

    VERIFY_PATH = "/v1/auth/token/verify"
    ME_PATH = "/v1/auth/me"
    JWKS_PATH = "/.well-known/jwks.json"

    def __init__(self, *, project_id: str = "proj_test", secret_key: str | None = None) -> None:
        super().__init__()
        self.project_id = project_id
        self.secret_key = secret_key or "sk_test_" + secrets.token_hex(16)
        self.publishable_key = "pk_test_" + secrets.token_hex(16)
        self.factory = TokenFactory("RS256", ttl=900)
        self.users: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, tuple[str, float]] = {}

    @property
    def jwks_url(self) -> str:
        """Where this fake publishes its token key."""
        return self.url + self.JWKS_PATH

    def add_user(
        self,
        user_id: str | None = None,
        *,
        email: str = "user@example.com",
        display_name: str | None = "Jane Doe",
        banned: bool = False,
        public_metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a user and return its user object.

        Args:
            user_id: the ``usr_…`` id; generated when omitted.
            email: the email.
            display_name: the display name.
            banned: whether the user is banned.
            public_metadata: the public metadata object.
        """
        uid = user_id or "usr_" + secrets.token_hex(6)
        self.users[uid] = {
            "id": uid,
            "projectId": self.project_id,
            "email": email,
            "displayName": display_name,
            "avatarUrl": None,
            "emailVerified": True,
            "isBanned": banned,
            "publicMetadata": public_metadata,
            "signInCount": 1,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-15T10:30:00.000Z",
        }
        return self.users[uid]

    def sign_in(self, user_id: str, *, ttl: float = 900.0) -> str:
        """An access token for the user, as ``POST /v1/auth/signin`` would return.

        Args:
            user_id: the user's id.
            ttl: seconds until it expires.
        """
        user = self.users[user_id]
        token = self.factory.mint(
            user_id,
            exp=int(time.time() + ttl),
            projectId=self.project_id,
            email=user["email"],
            isBanned=user["isBanned"],
        )
        self._sessions[token] = (user_id, time.time() + ttl)
        return token

    def ban(self, user_id: str) -> None:
        """Ban the user: its tokens stay valid, but it must not get in.

        Args:
            user_id: the user's id.
        """
        self.users[user_id]["isBanned"] = True

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path == self.JWKS_PATH and method == "GET":
            return json_answer(200, self.factory.jwks())
        if path == self.VERIFY_PATH and method == "GET":
            if headers.get("x-api-key") != self.secret_key:
                return _unauthorized("Invalid or missing secret key")
            return self._user_for(_bearer(headers))
        if path == self.ME_PATH and method == "GET":
            return self._user_for(_bearer(headers))
        return json_answer(404, {"statusCode": 404, "error": "Not Found", "message": "no route"})

    def _user_for(self, token: str | None) -> Answer:
        if token is None:
            return _unauthorized("Missing access token")
        session = self._sessions.get(token)
        if session is None or session[1] <= time.time():
            return _unauthorized("Invalid or expired access token")
        return json_answer(200, self.users[session[0]])


class FakeVeryChat(FakeServer):
    """VeryChat's ``POST /auth/validate-token`` (Bearer + ``{"projectId"}``), HS256 tokens.

    Args:
        project_id: the project id.
        secret: the HS256 secret (generated when omitted).
    """

    VALIDATE_PATH = "/auth/validate-token"

    def __init__(
        self,
        *,
        project_id: str = "550e8400-e29b-41d4-a716-446655440000",
        secret: bytes | None = None,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.key = SigningKey("HS256", kid="verychat", private=secret or secrets.token_bytes(32))
        self.factory = TokenFactory(key=self.key, ttl=3600)

    @property
    def secret(self) -> bytes:
        """The HS256 secret."""
        return self.key.secret

    def get_tokens(self, handle_id: str, *, ttl: float = 3600.0, keep_at: bool = False) -> str:
        """An access token, as ``POST /auth/get-tokens`` would return.

        Args:
            handle_id: the user's handle; a leading ``@`` is stripped as VeryChat does.
            ttl: seconds until it expires.
            keep_at: keep a leading ``@`` in ``sub`` (to test client-side normalisation).
        """
        subject = handle_id if keep_at else handle_id.removeprefix("@")
        now = int(time.time())
        return self.factory.mint(
            subject,
            headers={"kid": None},
            iat=now,
            exp=int(now + ttl),
            projectId=self.project_id,
            jti=None,
        )

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path != self.VALIDATE_PATH or method != "POST":
            return json_answer(404, {"statusCode": 404, "message": "Not Found"})
        invalid = json_answer(401, {"statusCode": 401, "message": "Invalid or expired token"})
        token = _bearer(headers)
        if token is None:
            return invalid
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("projectId"), str):
            return json_answer(400, {"statusCode": 400, "message": "projectId is required"})
        try:
            payload = pyjwt.decode(token, self.secret, algorithms=["HS256"])
        except pyjwt.PyJWTError:
            return invalid
        if request["projectId"] != self.project_id or payload.get("projectId") != self.project_id:
            return invalid
        fields = {
            name: payload[name] for name in ("sub", "projectId", "iat", "exp") if name in payload
        }
        return json_answer(200, {"statusCode": 200, "data": {"valid": True, "payload": fields}})


class FakeIntrospection(FakeServer):
    """An RFC 7662 introspection endpoint at ``/introspect``, as strict as real ones.

    Client authentication is HTTP Basic with each part form-urlencoded first (RFC 6749
    §2.3.1), decoded as servers decode it (``+`` is a space), or ``client_secret_post``, or,
    with ``resource_token``, that Bearer token (django-oauth-toolkit's way: a token of the
    resource server's with the ``introspection`` scope).
    Answers carry ``aud`` and ``iss``. Unknown tokens get ``{"active": false}``, or, with
    ``junk_status=400``, a 400 ``invalid_request`` as several servers answer junk values.

    Args:
        client_id: the resource server's client id.
        client_secret: its secret (generated when omitted).
        audience: the ``aud`` of the tokens it issues.
        junk_status: 200 (``active: false``) or 400 for tokens it never issued.
        resource_token: a Bearer token that also authenticates the resource server.
    """

    PATH = "/introspect"

    def __init__(
        self,
        *,
        client_id: str = "resource-server",
        client_secret: str | None = None,
        audience: str = "resource-server",
        junk_status: int = 200,
        resource_token: str | None = None,
    ) -> None:
        super().__init__()
        self.resource_token = resource_token
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.audience = audience
        self.junk_status = junk_status
        self.tokens: dict[str, dict[str, Any]] = {}

    @property
    def introspection_url(self) -> str:
        """The endpoint URL."""
        return self.url + self.PATH

    def issue(
        self,
        subject: str | None = "user-1",
        *,
        scope: str = "",
        ttl: float = 3600.0,
        client_id: str = "app",
        active: bool = True,
        audience: str | None = None,
        **extra: Any,
    ) -> str:
        """An opaque access token the endpoint knows.

        Args:
            subject: the ``sub`` (``None`` for a client-credentials token).
            scope: space-separated scopes.
            ttl: seconds until it expires.
            client_id: the client it was issued to.
            active: whether it is active.
            audience: its ``aud`` (default: the endpoint's audience).
            extra: more members of its introspection answer (e.g. ``realm_access``); ``None``
                removes one (``iss=None``: an answer without ``iss``).
        """
        token = "at_" + secrets.token_urlsafe(24)
        now = int(time.time())
        record: dict[str, Any] = {
            "active": active,
            "scope": scope,
            "client_id": client_id,
            "token_type": "Bearer",
            "iat": now,
            "exp": int(now + ttl),
            "iss": self.url,
            "aud": audience or self.audience,
        }
        if subject is not None:
            record["sub"] = subject
        for member, value in extra.items():  # None removes a member (e.g. iss=None)
            if value is None:
                record.pop(member, None)
            else:
                record[member] = value
        self.tokens[token] = record
        return token

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path != self.PATH or method != "POST":
            return json_answer(404, {"error": "not_found"})
        if not (headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
            return json_answer(400, {"error": "invalid_request"})
        form = parse_qs(body.decode("ascii", "replace"))
        bearer = self.resource_token is not None and hmac.compare_digest(
            headers.get("authorization") or "", f"Bearer {self.resource_token}"
        )
        if not bearer and self._client(headers, form) != (self.client_id, self.client_secret):
            return json_answer(
                401, {"error": "invalid_client"}, {"www-authenticate": 'Basic realm="introspect"'}
            )
        tokens = form.get("token")
        if not tokens:
            return json_answer(400, {"error": "invalid_request"})
        record = self.tokens.get(tokens[0])
        if record is None and self.junk_status == 400:
            return json_answer(400, {"error": "invalid_request", "error_description": "bad token"})
        if record is None or not record["active"] or record["exp"] <= time.time():
            return json_answer(200, {"active": False})
        return json_answer(200, record)

    @staticmethod
    def _client(headers: Message, form: dict[str, list[str]]) -> tuple[str, str] | None:
        """The client id and secret, decoded as RFC 6749 §2.3.1 servers decode them."""
        value = headers.get("authorization") or ""
        if value.startswith("Basic "):
            try:
                decoded = base64.b64decode(value[6:], validate=True).decode("ascii")
            except (ValueError, UnicodeDecodeError):
                return None
            user, sep, password = decoded.partition(":")
            return (unquote_plus(user), unquote_plus(password)) if sep else None
        if "client_id" in form and "client_secret" in form:  # client_secret_post
            return form["client_id"][0], form["client_secret"][0]
        return None


class FakeCognito(FakeServer):
    """An AWS Cognito user pool's key endpoint (``/{pool}/.well-known/jwks.json``, under the
    pool's issuer) minting access and ID tokens shaped as AWS documents them.

    Args:
        region: the pool's region.
        user_pool_id: the pool id.
        client_id: the app client id.
    """

    def __init__(
        self,
        *,
        region: str = "eu-west-1",
        user_pool_id: str = "eu-west-1_TestPool1",
        client_id: str = "3n4b5urk1ft4fl3mg5e62d9ado",
    ) -> None:
        super().__init__()
        self.region = region
        self.user_pool_id = user_pool_id
        self.client_id = client_id
        self.factory = TokenFactory("RS256", ttl=3600)

    def started(self) -> None:
        self.factory.issuer = self.issuer

    @property
    def issuer(self) -> str:
        """The pool's issuer (the fake's URL stands in for the regional endpoint)."""
        return f"{self.url}/{self.user_pool_id}"

    def _common(self, username: str, groups: tuple[str, ...]) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "origin_jti": secrets.token_hex(16),
            "event_id": secrets.token_hex(16),
            "auth_time": int(time.time()) - 30,
        }
        if groups:
            claims["cognito:groups"] = list(groups)
        return claims

    def access_token(
        self,
        username: str = "alice",
        *,
        groups: tuple[str, ...] = (),
        scope: str = "aws.cognito.signin.user.admin",
        **claims: Any,
    ) -> str:
        """An access token: ``token_use: access``, ``client_id``, ``scope``, no ``aud``.

        Args:
            username: the user's name (``sub`` is a UUID of it).
            groups: the user's groups.
            scope: the granted scopes.
            claims: claims to add or override.
        """
        body = {
            **self._common(username, groups),
            "version": 2,
            "client_id": self.client_id,
            "token_use": "access",
            "scope": scope,
            "username": username,
            **claims,
        }
        return self.factory.mint(_uuid_of(username), **body)

    def id_token(
        self, username: str = "alice", *, groups: tuple[str, ...] = (), **claims: Any
    ) -> str:
        """An ID token: ``token_use: id``, ``aud`` the app client, ``cognito:username``.

        Args:
            username: the user's name.
            groups: the user's groups.
            claims: claims to add or override.
        """
        body = {
            **self._common(username, groups),
            "aud": self.client_id,
            "token_use": "id",
            "cognito:username": username,
            "email": f"{username}@example.com",
            "email_verified": True,
            **claims,
        }
        return self.factory.mint(_uuid_of(username), **body)

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path == f"/{self.user_pool_id}/.well-known/jwks.json":
            return json_answer(200, self.factory.jwks())
        return super().answer(method, path, headers, body)


def _uuid_of(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


class FakeFirebase(FakeServer):
    """Google's certificate map for Firebase ID tokens (``{kid: PEM certificate}``) and ID
    tokens shaped as Firebase documents them (``user_id``, ``auth_time``, ``firebase``).

    Args:
        project_id: the Firebase project id (the tokens' ``aud``).
    """

    PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"

    def __init__(self, *, project_id: str = "authgate-test") -> None:
        super().__init__()
        self.project_id = project_id
        self.factory = TokenFactory(
            "RS256", issuer=f"https://securetoken.google.com/{project_id}", audience=project_id
        )

    @property
    def certificates_url(self) -> str:
        """The certificate map's URL."""
        return self.url + self.PATH

    def id_token(self, uid: str = "alice-uid", **claims: Any) -> str:
        """An ID token for ``uid`` signed in with a password.

        Args:
            uid: the user's uid (``sub`` and ``user_id``).
            claims: claims to add or override (e.g. ``auth_time``, custom claims).
        """
        body = {
            "auth_time": int(time.time()) - 60,
            "user_id": uid,
            "email": f"{uid}@example.com",
            "email_verified": True,
            "firebase": {
                "identities": {"email": [f"{uid}@example.com"]},
                "sign_in_provider": "password",
            },
            "jti": None,
            **claims,
        }
        return self.factory.mint(uid, **body)

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path == self.PATH:
            return json_answer(
                200,
                {self.factory.key.kid: _self_signed(self.factory.key)},
                {"cache-control": "public, max-age=19302, must-revalidate, no-transform"},
            )
        return super().answer(method, path, headers, body)


def _self_signed(key: SigningKey) -> str:
    """A self-signed PEM certificate of ``key``'s public half (as Google's map holds)."""
    import datetime

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key.private, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


class FakeGoogle(FakeServer):
    """Google's signing keys, as a JWKS (``/oauth2/v3/certs``) and as a certificate map
    (``/oauth2/v1/certs``), and Google ID tokens shaped as Google documents them (``azp``,
    ``email``, ``email_verified``, ``hd`` for Workspace accounts, ``iss`` in either spelling).

    Args:
        client_id: your OAuth client id (the tokens' ``aud``).
    """

    JWKS_PATH = "/oauth2/v3/certs"
    CERTIFICATES_PATH = "/oauth2/v1/certs"

    def __init__(self, *, client_id: str = "1234-abc.apps.googleusercontent.com") -> None:
        super().__init__()
        self.client_id = client_id
        self.factory = TokenFactory(
            "RS256", issuer="https://accounts.google.com", audience=client_id
        )

    @property
    def jwks_url(self) -> str:
        """The JWKS's URL."""
        return self.url + self.JWKS_PATH

    def id_token(
        self, subject: str = "110169484474386276334", *, hosted_domain: str | None = None,
        **claims: Any,
    ) -> str:  # fmt: skip
        """An ID token for the Google account ``subject`` (a numeric string).

        Args:
            subject: the account's ``sub``.
            hosted_domain: the Workspace domain (``hd``); none for a consumer account.
            claims: claims to add or override (``iss="accounts.google.com"``: the other
                spelling Google uses).
        """
        body: dict[str, Any] = {
            "azp": self.client_id,
            "email": "alice@example.com",
            "email_verified": True,
            "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
            "name": "Alice Example",
            "jti": None,
            **claims,
        }
        if hosted_domain is not None:
            body.setdefault("hd", hosted_domain)
        return self.factory.mint(subject, **body)

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        caching = {"cache-control": "public, max-age=21600, must-revalidate, no-transform"}
        if path == self.JWKS_PATH:
            return json_answer(200, self.factory.jwks(), caching)
        if path == self.CERTIFICATES_PATH:
            certificates = {self.factory.key.kid: _self_signed(self.factory.key)}
            return json_answer(200, certificates, caching)
        return super().answer(method, path, headers, body)


class FakeAuth0(FakeServer):
    """An Auth0 tenant's JWKS (``/.well-known/jwks.json``) and access tokens for an API shaped
    as Auth0 documents them: ``iss`` with its trailing slash, ``aud`` the API identifier,
    ``azp``, ``scope`` and (RBAC) ``permissions``.

    Args:
        audience: the API identifier.
    """

    def __init__(self, *, audience: str = "https://api.example.com") -> None:
        super().__init__()
        self.audience = audience
        self.factory = TokenFactory("RS256", audience=audience)

    def started(self) -> None:
        self.factory.issuer = self.url + "/"

    def access_token(
        self, subject: str = "auth0|alice", *, permissions: tuple[str, ...] = (), **claims: Any
    ) -> str:
        """An access token for the API.

        Args:
            subject: the ``sub`` (``auth0|…``, or ``…@clients`` for machine tokens).
            permissions: RBAC permissions.
            claims: claims to add or override.
        """
        body = {"azp": "SPAclientId123", "scope": "openid profile", **claims}
        if permissions:
            body["permissions"] = list(permissions)
        return self.factory.mint(subject, **body)

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path == "/.well-known/jwks.json":
            return json_answer(200, self.factory.jwks())
        return super().answer(method, path, headers, body)


class FakeOIDC(FakeServer):
    """An OpenID provider as Keycloak, Okta, GitHub Actions, Supabase or Clerk lay theirs out:
    discovery under the issuer, the JWKS where the provider puts it, tokens minted by
    :attr:`factory` with the claims each documents (the tests pass them).

    Args:
        issuer_path: the issuer's path below the fake's URL (``/realms/demo``, ``/oauth2/default``).
        jwks_path: where the JWKS is served (``/realms/demo/protocol/openid-connect/certs``).
        alg: the signing algorithm.
        audience: the ``aud`` of minted tokens, when set.
    """

    def __init__(
        self,
        *,
        issuer_path: str = "",
        jwks_path: str = "/.well-known/jwks.json",
        alg: str = "RS256",
        audience: str | None = None,
    ) -> None:
        super().__init__()
        self.issuer_path = issuer_path
        self.jwks_path = jwks_path
        self.factory = TokenFactory(alg, audience=audience)

    def started(self) -> None:
        self.factory.issuer = self.issuer

    @property
    def issuer(self) -> str:
        """The issuer (``iss``)."""
        return self.url + self.issuer_path

    def mint(self, subject: str = "user-1", **claims: Any) -> str:
        """A token (see :meth:`TokenFactory.mint`).

        Args:
            subject: the ``sub``.
            claims: the provider's claims.
        """
        return self.factory.mint(subject, **claims)

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path == self.issuer_path + "/.well-known/openid-configuration":
            return json_answer(200, {"issuer": self.issuer, "jwks_uri": self.url + self.jwks_path})
        if path == self.jwks_path:
            return json_answer(200, self.factory.jwks())
        return super().answer(method, path, headers, body)


class FakeALB(FakeServer):
    """An AWS Application Load Balancer's key endpoint (``/{kid}``: a PEM public key) and the
    user-claims tokens ALB forwards in ``x-amzn-oidc-data``, shaped as AWS documents them:
    ES256, ``typ``, ``kid`` a UUID, ``signer`` the ALB's ARN, ``client``, ``iss`` and ``exp`` in
    the header, each segment base64url *with* ``=`` padding, signed over the padded text.

    Args:
        region: the load balancer's region.
        client_id: the client id of its authenticate action.
        issuer: the identity provider's issuer.
    """

    def __init__(
        self,
        *,
        region: str = "eu-west-1",
        client_id: str = "4mu9e2gt0v3cjq84hn1k7dlr5a",
        issuer: str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
    ) -> None:
        super().__init__()
        self.arn = (
            f"arn:aws:elasticloadbalancing:{region}:123456789012:"
            "loadbalancer/app/my-load-balancer/50dc6c495c0c9188"
        )
        self.client_id = client_id
        self.issuer = issuer
        self.key = SigningKey("ES256", kid=str(uuid.uuid4()))
        self.retired: list[SigningKey] = []

    def rotate(self) -> None:
        """Sign with a new key from now on (the old one stays published)."""
        self.retired.append(self.key)
        self.key = SigningKey("ES256", kid=str(uuid.uuid4()))

    def token(
        self,
        subject: str = "8f2c5a8e-2f6b-4c1a-9d8e-7b6a5c4d3e2f",
        *,
        header: dict[str, Any] | None = None,
        padded: bool = True,
        lifetime: float = 120.0,
        **claims: Any,
    ) -> str:
        """A user-claims token as ALB forwards it.

        Args:
            subject: the user's ``sub``.
            header: header members to add or override (``signer``, ``client``, ``kid``...).
            padded: pad the segments as ALB does (``False``: the RFC 7515 form).
            lifetime: seconds until ``exp``.
            claims: user claims to add or override.
        """
        exp = int(time.time() + lifetime)
        fields = {  # in the order, and compact form, of a real ALB token's header
            "typ": "JWT",
            "kid": self.key.kid,
            "alg": "ES256",
            "iss": self.issuer,
            "client": self.client_id,
            "signer": self.arn,
            "exp": exp,
            **(header or {}),
        }
        body = {
            "sub": subject,
            "email": "alice@example.com",
            "email_verified": "true",
            "username": subject,
            "exp": exp,
            "iss": self.issuer,
            **claims,
        }

        def encode(data: bytes) -> str:
            text = base64.urlsafe_b64encode(data).decode()
            return text if padded else text.rstrip("=")

        signing_input = (
            encode(json.dumps(fields).encode()) + "." + encode(json.dumps(body).encode())
        )
        der = self.key.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        for key in (self.key, *self.retired):
            if path == "/" + key.kid:
                pem = key.private.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                return Answer(200, pem, {"content-type": "application/octet-stream"})
        # the endpoint is an S3 bucket: a key it does not hold is 403 AccessDenied
        return Answer(
            403, b"<Error><Code>AccessDenied</Code></Error>", {"content-type": "application/xml"}
        )
