"""``authgate``: inspect tokens, verify them as the middleware would, list a key set.

::

    authgate inspect -                       # the token on standard input (not in shell history)
    authgate verify - --issuer https://idp.example --jwks https://idp.example/keys
    authgate jwks --oidc https://idp.example

Exit codes: 0 valid, 1 invalid token, 2 usage or configuration error, 3 keys or provider
unreachable. ``--json`` prints one JSON document for scripts. HMAC secrets come only from a
file (``--secret-file``) or an environment variable (``--secret-env``), never an argument.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

from ._clients import Clients
from ._decisions import explain
from ._exchange import Request, Response, UpstreamError
from ._upstream import MAX_BODY, Upstream, check_url
from .authenticator import Authenticator
from .errors import AuthGateError, ConfigurationError, ServiceUnavailable, UnverifiedBinding
from .extract import MAX_TOKEN_BYTES, Credential
from .jwt import JWTVerifier
from .keys import ALGORITHMS, KeySet, parse_jwks
from .keysources import (
    KEY_FETCH_TIMEOUT,
    JWKSKeySource,
    KeyFetchPolicy,
    OIDCKeySource,
    RemoteKeySource,
)
from .principal import principal_from_claims
from .providers.base import JWTProvider

__all__ = ["main"]

VALID: Final = 0
INVALID: Final = 1
USAGE: Final = 2
UNREACHABLE: Final = 3


class _Usage(Exception):
    """A usage or configuration error: exit 2."""


class _Unreachable(Exception):
    """Keys or a provider could not be reached: exit 3."""


_EPILOG = """\
exit codes:
  0  the token verifies (verify), or the command ran (inspect, jwks)
  1  the token is refused (verify): the reason is printed, as the middleware logs it
  2  a usage or configuration mistake
  3  the keys or the identity provider cannot be reached

examples:
  authgate inspect - <<< "$TOKEN"
  authgate verify - --issuer https://idp.example --jwks https://idp.example/jwks < token.txt
  authgate verify - --issuer https://idp.example --oidc https://idp.example --json < token.txt
  authgate jwks https://login.example.com/.well-known/jwks.json
  authgate jwks --oidc https://accounts.google.com --json
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
    """
    import logging

    # the command prints the reason itself: the library's own records would repeat it (a
    # logger without handlers would reach logging's last-resort handler, hence the NullHandler)
    library = logging.getLogger("authgate")
    library.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in library.handlers):
        library.addHandler(logging.NullHandler())
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except _Usage as exc:
        print(f"authgate: {exc}", file=sys.stderr)
        return USAGE
    except ConfigurationError as exc:
        print(f"authgate: {exc.message}", file=sys.stderr)
        return USAGE
    except _Unreachable as exc:
        print(f"authgate: {exc}", file=sys.stderr)
        return UNREACHABLE
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authgate",
        description="Inspect and verify tokens; list key sets.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", help="decode a token WITHOUT verifying it, and list its problems"
    )
    inspect.add_argument("token", help="the token, or - to read it from standard input")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(run=_inspect)

    verify = commands.add_parser("verify", help="verify a token as the middleware would")
    verify.add_argument("token", help="the token, or - to read it from standard input")
    verify.add_argument("--issuer", required=True, help="the exact iss expected")
    verify.add_argument("--audience", action="append", help="an accepted aud (repeatable)")
    keys = verify.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks", metavar="URL", help="a JWKS URL")
    keys.add_argument("--oidc", metavar="ISSUER", help="OIDC discovery at this issuer")
    keys.add_argument("--pem", metavar="FILE", help="a PEM public key file")
    keys.add_argument("--secret-env", metavar="NAME", help="an HMAC secret in this variable")
    keys.add_argument("--secret-file", metavar="FILE", help="an HMAC secret in this file")
    verify.add_argument("--alg", action="append", help="an allowed algorithm (repeatable)")
    verify.add_argument("--leeway", type=float, default=30.0, help="seconds of clock skew")
    verify.add_argument(
        "--max-token-lifetime",
        type=float,
        default=86400.0,
        help="the longest lifetime accepted, in seconds (the Authenticator's; default a day)",
    )
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(run=_verify)

    jwks = commands.add_parser("jwks", help="list a key set's keys and whether each is usable")
    where = jwks.add_mutually_exclusive_group(required=True)
    where.add_argument("url", nargs="?", help="a JWKS URL")
    where.add_argument("--oidc", metavar="ISSUER", help="OIDC discovery at this issuer")
    jwks.add_argument("--json", action="store_true", help="print JSON")
    jwks.set_defaults(run=_jwks)
    return parser


# -- inspect ----------------------------------------------------------------------------------


def _token(argument: str) -> str:
    if argument != "-":
        # a token on the command line lands in the shell's history and in `ps` for all to read
        print(
            "authgate: warning: a token given as an argument stays in your shell history; "
            'pass - and the token on standard input (or: ... - <<< "$TOKEN")',
            file=sys.stderr,
        )
    text = sys.stdin.read() if argument == "-" else argument
    token = text.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        raise _Usage("no token given (pass it, or - and the token on standard input)")
    return token


def _b64json(segment: str) -> Any:
    from ._codec import b64url_decode

    return json.loads(b64url_decode(segment))


def _when(value: Any, now: float) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return f"{value!r} (not a number)"
    try:
        moment = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{value} (out of range)"
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    delta = value - now
    return f"{stamp}, {_relative(delta)}"


def _relative(delta: float) -> str:
    span = abs(delta)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if span >= size:
            amount = f"{span / size:.0f} {unit}"
            break
    else:
        amount = f"{span:.0f} s"
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def _problems(token: str, header: Any, claims: Any, now: float) -> list[str]:
    found = []
    if len(token) > MAX_TOKEN_BYTES:
        found.append(f"too large: {len(token)} bytes (the limit is {MAX_TOKEN_BYTES})")
    if not isinstance(header, dict):
        return [*found, "the header is not a JSON object"]
    alg = header.get("alg")
    if not isinstance(alg, str):
        found.append("no 'alg' in the header")
    elif alg.lower() == "none":
        found.append("alg 'none': never accepted")
    elif alg not in ALGORITHMS:
        found.append(f"alg {alg!r} is not supported")
    if "kid" not in header:
        found.append("no 'kid': only a key set of one key can verify it")
    for name in ("crit", "b64", "enc"):
        if name in header:
            found.append(f"header {name!r}: refused (unsupported)")
    if not isinstance(claims, dict):
        return [*found, "the payload is not a JSON object"]
    exp = claims.get("exp")
    if exp is None:
        found.append("no 'exp': refused unless required_claims drops it")
    elif isinstance(exp, int | float) and exp <= now:
        found.append("expired")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if isinstance(value, int | float) and value > now:
            found.append(f"'{name}' is in the future")
    if "aud" in claims:
        found.append("carries 'aud': the verifier must be given the audience")
    if "iss" not in claims:
        found.append("no 'iss': only a provider without an issuer can take it")
    return found


def _inspect(args: argparse.Namespace) -> int:
    token = _token(args.token)
    now = time.time()
    parts = token.split(".")
    if len(parts) != 3:
        return _say(args, {"error": f"not a compact JWT ({len(parts)} segments)"}, INVALID)
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, UnicodeDecodeError):
        return _say(args, {"error": "the header or payload is not base64url JSON"}, INVALID)
    problems = _problems(token, header, claims, now)
    times = {
        name: _when(claims[name], now)
        for name in ("exp", "nbf", "iat")
        if isinstance(claims, dict) and name in claims
    }
    if args.json:
        document = {"verified": False, "header": header, "claims": claims}
        document.update({"times": times, "problems": problems})
        print(json.dumps(document, indent=2, sort_keys=True))
        return VALID
    print("UNVERIFIED: decoded without checking the signature or any claim")
    print("header:", json.dumps(header, sort_keys=True))
    print("claims:", json.dumps(claims, indent=2, sort_keys=True))
    for name, text in times.items():
        print(f"{name}: {text}")
    print("problems:" if problems else "problems: none found")
    for problem in problems:
        print(f"  - {problem}")
    return VALID


# -- verify -----------------------------------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    token = _token(args.token)
    keys, algorithms = _keys(args)
    verifier = JWTVerifier(
        keys,
        algorithms=algorithms,
        issuer=args.issuer,
        audience=args.audience,
        leeway=args.leeway,
    )
    # then what the middleware checks beyond signature and claims, for a Bearer request: a
    # binding (cnf) it cannot prove, a lifetime beyond max_token_lifetime (built first: a
    # wrong --max-token-lifetime is a usage error, not a refused token)
    middleware = Authenticator(
        [JWTProvider("cli", verifier)], cache=None, max_token_lifetime=args.max_token_lifetime
    )
    try:
        claims = verifier.verify(token)
        principal = principal_from_claims(claims, provider="cli")
        middleware.verify_credential(Credential("bearer", token))
    except ServiceUnavailable as exc:
        raise _Unreachable(f"{exc.message}: {exc.detail}") from None
    except AuthGateError as exc:
        reason = explain(exc, Credential("bearer", token))
        said: dict[str, Any] = {"valid": False, "reason": exc.reason, "log": reason}
        if isinstance(exc, UnverifiedBinding):
            said["hint"] = (
                "the token is bound (cnf): the middleware accepts it only with its proof "
                "(Authorization: DPoP and a DPoP header) or its client certificate"
            )
        if exc.reason == "key_not_found":  # which kids there are: the usual fix is a key id
            held = keys if isinstance(keys, KeySet) else keys.current()
            said["kids"] = sorted(held.kids()) if held is not None else []
        return _say(args, said, INVALID)
    finally:
        verifier.close()
    scopes = sorted(principal.scopes)
    document: dict[str, Any] = {
        "valid": True,
        "subject": principal.subject,
        "issuer": principal.issuer,
        "tenant": principal.tenant,
        "email": principal.email,
        "name": principal.name,
        "scopes": scopes,
        "expires_at": principal.expires_at,
    }
    if args.json:
        print(json.dumps({**document, "claims": claims}, indent=2, sort_keys=True))
    else:
        print(f"valid: {principal.subject} (issuer {principal.issuer})")
        for name in ("tenant", "email", "name"):
            if document[name]:
                print(f"{name}: {document[name]}")
        print("scopes:", " ".join(scopes))
        if principal.expires_at is not None:
            print("expires:", _when(principal.expires_at, time.time()))
    return VALID


def _keys(args: argparse.Namespace) -> tuple[KeySet | RemoteKeySource, list[str]]:
    chosen: list[str] = args.alg or []
    if args.pem or args.secret_env or args.secret_file:
        if not chosen:
            raise _Usage("--alg is required with --pem, --secret-env and --secret-file")
        if args.pem:
            try:
                with open(args.pem, "rb") as file:
                    return KeySet.from_pem(file.read()), chosen
            except OSError as exc:
                raise _Usage(f"cannot read {args.pem}: {exc.strerror}") from None
        return KeySet.from_secret(_secret(args)), chosen
    source: RemoteKeySource = JWKSKeySource(args.jwks) if args.jwks else OIDCKeySource(args.oidc)
    if chosen:
        return source, chosen
    # no --alg: the algorithms the keys name, else the discovery document's
    named = _fetched_algorithms(source)
    if not named and args.oidc:
        named = _discovered_algorithms(args.oidc)
    if not named:
        raise _Usage("the keys name no algorithm: pass --alg")
    return source, named


def _secret(args: argparse.Namespace) -> bytes:
    if args.secret_env:
        value = os.environ.get(args.secret_env)
        if not value:
            raise _Usage(f"the environment variable {args.secret_env} is not set")
        return value.encode()
    try:
        with open(args.secret_file, "rb") as file:
            return file.read().strip()
    except OSError as exc:
        raise _Usage(f"cannot read {args.secret_file}: {exc.strerror}") from None


def _fetched_algorithms(source: RemoteKeySource) -> list[str]:
    source.refresh()
    keyset = source.current()
    if keyset is None:
        raise _Unreachable(f"no keys: {source.unavailable().detail}")
    return sorted({key.alg for key in keyset.keys if key.alg})


def _discovered_algorithms(issuer: str) -> list[str]:
    document = _get(issuer.rstrip("/") + "/.well-known/openid-configuration").json()
    values = (
        document.get("id_token_signing_alg_values_supported")
        if isinstance(document, dict)
        else None
    )
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, str) and v in ALGORITHMS]


def _get(url: str) -> Response:
    check_url(url, "the URL")

    def plan() -> Any:
        response = yield Request("GET", url, {"accept": "application/json"})
        return response

    clients = Clients(Upstream().settings(timeout=KEY_FETCH_TIMEOUT, max_body=MAX_BODY))
    try:
        response: Response = clients.run(plan())
    except UpstreamError as exc:
        raise _Unreachable(f"{url}: {exc.message}") from None
    finally:
        clients.close()
    if response.status != 200:
        raise _Unreachable(f"{url} answered HTTP {response.status}")
    return response


# -- jwks -------------------------------------------------------------------------------------


def _jwks(args: argparse.Namespace) -> int:
    url = args.url
    if args.oidc:
        document = _get(args.oidc.rstrip("/") + "/.well-known/openid-configuration").json()
        url = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(url, str):
            raise _Unreachable("the discovery document has no jwks_uri")
    response = _get(url)
    try:
        document = response.json()
    except UpstreamError as exc:
        raise _Unreachable(exc.message) from None
    rows = _key_rows(document)
    fresh = KeyFetchPolicy().freshness(response)
    if args.json:
        summary = {"url": url, "fresh_for": fresh, "keys": rows}
        print(json.dumps(summary, indent=2, sort_keys=True))
        return VALID
    print(f"{url}: {len(rows)} keys, fresh for {fresh:.0f} s (Cache-Control: "
          f"{response.headers.get('cache-control', 'none')})")  # fmt: skip
    for row in rows:
        size = row.get("crv") or (f"{row['bits']} bits" if row.get("bits") else "")
        status = "usable" if row["usable"] else f"NOT usable: {row['why']}"
        print(f"  kid={row['kid']!r} kty={row['kty']} alg={row['alg']} {size} {status}")
    return VALID


def _key_rows(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _Unreachable("the answer is not a JWKS (no 'keys' array)")
    rows = []
    for jwk in document["keys"]:
        row: dict[str, Any] = {"kid": None, "kty": None, "alg": None}
        if isinstance(jwk, dict):
            row.update({k: jwk.get(k) for k in ("kid", "kty", "alg", "crv", "use")})
        keys, skipped = parse_jwks({"keys": [jwk]}, allow_secret=False)
        row["usable"] = bool(keys)
        row["why"] = skipped[0].split(": ", 1)[-1] if skipped else ""
        if keys and keys[0].kty == "RSA":
            row["bits"] = keys[0].material.key_size  # type: ignore[union-attr]
        rows.append(row)
    return rows


def _say(args: argparse.Namespace, document: dict[str, Any], code: int) -> int:
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        for key, value in document.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            print(f"{key}: {shown}")
    return code
