"""The ``authgate`` command line, run as a subprocess against servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from authgate.testing import (
    Answer,
    DPoPClient,
    FakeServer,
    LocalIssuer,
    SigningKey,
    TokenFactory,
    json_answer,
)


def authgate(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "authgate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer("ES256", audience="api://orders") as server:
        yield server


def test_inspect_is_labelled_unverified_and_lists_problems(issuer: LocalIssuer) -> None:
    token = issuer.mint("ada", exp=1_000_000_000)
    code, out, _ = authgate("inspect", "-", stdin=token)
    assert code == 0
    assert out.startswith("UNVERIFIED: decoded without checking the signature or any claim\n")
    assert '"sub": "ada"' in out
    assert "exp: 2001-09-09T01:46:40Z, " in out
    assert " ago\n" in out
    assert "  - expired\n" in out
    assert "  - carries 'aud': the verifier must be given the audience\n" in out


def test_inspect_json_and_its_problem_list() -> None:
    factory = TokenFactory("HS256", issuer="https://idp.example")
    token = factory.sign(json.dumps({"alg": "none", "crit": ["x"]}), json.dumps({"iat": 4e9}))
    code, out, _ = authgate("inspect", token, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["verified"] is False
    assert document["problems"] == [
        "alg 'none': never accepted",
        "no 'kid': only a key set of one key can verify it",
        "header 'crit': refused (unsupported)",
        "no 'exp': refused unless required_claims drops it",
        "'iat' is in the future",
        "no 'iss': only a provider without an issuer can take it",
    ]
    assert document["times"]["iat"].startswith("2096-10-02T07:06:40Z, in ")


@pytest.mark.parametrize("value", ["not-a-jwt", "a.b.c"])
def test_inspect_refuses_what_is_not_a_jwt(value: str) -> None:
    code, out, _ = authgate("inspect", value)
    assert code == 1
    assert out.startswith("error: ")


def test_verify_a_valid_token_prints_the_principal(issuer: LocalIssuer) -> None:
    token = issuer.mint("ada", scope="orders:read", email="ada@example.com")
    args = ["--issuer", issuer.url, "--audience", "api://orders", "--jwks", issuer.jwks_url]
    code, out, _ = authgate("verify", "-", *args, stdin=token)
    assert code == 0
    assert out.startswith(f"valid: ada (issuer {issuer.url})\nemail: ada@example.com\n")
    code, out, _ = authgate("verify", "-", *args, "--json", stdin=token)
    assert code == 0
    document = json.loads(out)
    assert (document["valid"], document["subject"], document["scopes"]) == (
        True,
        "ada",
        ["authenticated", "orders:read"],
    )


def test_verify_with_oidc_discovery(issuer: LocalIssuer) -> None:
    token = issuer.mint("ada")
    args = ["--issuer", issuer.url, "--audience", "api://orders", "--oidc", issuer.url]
    assert authgate("verify", "-", *args, stdin=token)[0] == 0


@pytest.mark.parametrize(
    ("claims", "options", "reason", "line"),
    [
        ({}, ["--audience", "api://orders", "--issuer", "{url}/"], "bad_issuer",
         "iss '{url}', expected '{url}/'"),
        ({}, ["--audience", "api://billing", "--issuer", "{url}"], "bad_audience",
         "aud 'api://orders', expected api://billing"),
        ({}, ["--issuer", "{url}"], "bad_audience", "and no audience is configured"),
        ({"exp": 1}, ["--audience", "api://orders", "--issuer", "{url}"], "expired", "expired"),
    ],
)  # fmt: skip
def test_verify_an_invalid_token_says_why(
    issuer: LocalIssuer, claims: dict[str, Any], options: list[str], reason: str, line: str
) -> None:
    token = issuer.mint("ada", **claims)
    args = [option.format(url=issuer.url) for option in options]
    code, out, _ = authgate("verify", "-", *args, "--jwks", issuer.jwks_url, "--json", stdin=token)
    assert code == 1
    document = json.loads(out)
    assert document["valid"] is False
    assert document["reason"] == reason
    assert line.format(url=issuer.url) in document["log"]
    assert token not in out


def test_verify_with_a_pem_and_a_secret(tmp_path: Path) -> None:
    key = SigningKey("RS256")
    pem = tmp_path / "key.pem"
    public = key.private.public_key()
    pem.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    token = TokenFactory(key=key, issuer="https://idp.example").mint("ada")
    base = ["--issuer", "https://idp.example"]
    assert authgate("verify", token, *base, "--pem", str(pem), "--alg", "RS256")[0] == 0
    code, _, err = authgate("verify", token, *base, "--pem", str(pem))
    assert code == 2
    assert "--alg is required" in err
    secret = "s" * 40
    signed = TokenFactory(
        key=SigningKey("HS256", private=secret.encode()), issuer="https://idp.example"
    ).mint("bob")
    env = {"AUTHGATE_SECRET": secret}
    code, out, _ = authgate(
        "verify", "-", *base, "--secret-env", "AUTHGATE_SECRET", "--alg", "HS256",
        stdin=signed, env=env,
    )  # fmt: skip
    assert code == 0
    assert out.startswith("valid: bob")
    (tmp_path / "secret").write_text(secret + "\n")
    args = ["--secret-file", str(tmp_path / "secret"), "--alg", "HS256"]
    assert authgate("verify", signed, *base, *args)[0] == 0


def test_unreachable_keys_exit_3_and_usage_errors_exit_2(issuer: LocalIssuer) -> None:
    token = issuer.mint("ada")
    code, _, err = authgate(
        "verify", token, "--issuer", issuer.url, "--jwks", "http://127.0.0.1:9/keys"
    )
    assert code == 3
    assert "the connection was refused" in err
    assert authgate("verify", token, "--issuer", issuer.url)[0] == 2  # no key option
    code, _, err = authgate("verify", token, "--issuer", issuer.url, "--secret-env", "UNSET_X_Y")
    assert code == 2
    code, _, err = authgate(
        "verify", "-", "--issuer", "x", "--jwks", "ftp://keys", "--alg", "ES256", stdin=token
    )
    assert code == 2
    assert "https" in err


class AlgLessIssuer(FakeServer):
    """Keys without 'alg' members; the discovery document names the algorithms or not."""

    def __init__(self, algorithms: list[str] | None) -> None:
        super().__init__()
        self.factory = TokenFactory("ES256")
        self.algorithms = algorithms

    def started(self) -> None:
        self.factory.issuer = self.url

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path == "/.well-known/openid-configuration":
            document: dict[str, Any] = {"issuer": self.url, "jwks_uri": self.url + "/keys"}
            if self.algorithms is not None:
                document["id_token_signing_alg_values_supported"] = self.algorithms
            return json_answer(200, document)
        if path == "/keys":
            keys = [
                {k: v for k, v in jwk.items() if k != "alg"} for jwk in self.factory.jwks()["keys"]
            ]
            return json_answer(200, {"keys": keys})
        return super().answer(method, path, headers, body)


def test_without_alg_the_discovery_document_names_the_algorithms() -> None:
    with AlgLessIssuer(["ES256", "RS256"]) as named, AlgLessIssuer(None) as silent:
        token = named.factory.mint("ada")
        assert authgate("verify", token, "--issuer", named.url, "--oidc", named.url)[0] == 0
        code, _, err = authgate(
            "verify", silent.factory.mint("ada"), "--issuer", silent.url, "--oidc", silent.url
        )
        assert code == 2
        assert "pass --alg" in err


def test_jwks_lists_each_key_and_why_it_is_not_usable(issuer: LocalIssuer) -> None:
    issuer.extra_keys = [{"kty": "RSA", "kid": "tiny", "n": "AQAB", "e": "AQAB"}]
    try:
        code, out, _ = authgate("jwks", issuer.jwks_url)
        assert code == 0
        assert out.splitlines()[0] == (
            f"{issuer.jwks_url}: 2 keys, fresh for 600 s (Cache-Control: max-age=600)"
        )
        assert "alg=ES256 P-256 usable" in out
        assert "kid='tiny' kty=RSA alg=None  NOT usable: " in out
        code, out, _ = authgate("jwks", "--oidc", issuer.url, "--json")
        assert code == 0
        document = json.loads(out)
        assert document["fresh_for"] == 600
        assert [k["usable"] for k in document["keys"]] == [True, False]
    finally:
        issuer.extra_keys = []


def test_more_inputs_and_failures(issuer: LocalIssuer, tmp_path: Path) -> None:
    """A 'Bearer ' prefix on stdin is dropped; an oversized token is reported; an empty
    input, an unreadable PEM or secret file are usage errors; a JWKS URL answering something
    else, or an error, exits 3."""
    token = issuer.mint("ada")
    code, out, _ = authgate("inspect", "-", stdin=f"Bearer {token}\n")
    assert code == 0
    assert '"sub": "ada"' in out
    big = issuer.mint("ada", filler="x" * 20000)
    code, out, _ = authgate("inspect", big, "--json")
    assert code == 0
    assert any(p.startswith("too large: ") for p in json.loads(out)["problems"])
    assert authgate("inspect", "-", stdin="  \n")[0] == 2
    base = ["--issuer", issuer.url, "--alg", "ES256"]
    assert authgate("verify", token, *base, "--pem", str(tmp_path / "missing.pem"))[0] == 2
    assert authgate("verify", token, *base, "--secret-file", str(tmp_path / "nope"))[0] == 2
    code, _, err = authgate("jwks", issuer.url + "/.well-known/openid-configuration")
    assert code == 3
    assert "not a JWKS" in err
    code, _, err = authgate("jwks", issuer.url + "/missing")
    assert code == 3
    assert "HTTP 404" in err
    code, out, _ = authgate("verify", "not.a.jwt", *base, "--jwks", issuer.jwks_url, "--json")
    assert code == 1
    assert json.loads(out)["reason"] == "malformed"


def test_help_names_the_exit_codes_and_shows_examples() -> None:
    """--help lists the four exit codes and runnable examples reading the token from stdin."""
    code, out, _ = authgate("--help")
    assert code == 0
    for line in ("0  the token verifies", "1  the token is refused", "2  a usage", "3  the keys"):
        assert line in out
    assert 'authgate inspect - <<< "$TOKEN"' in out


def test_a_token_given_as_an_argument_is_warned_about(issuer: LocalIssuer) -> None:
    """A token on the command line stays in the shell's history: a warning on stderr says
    how to pass it on standard input instead; given on stdin, no warning."""
    token = issuer.mint("ada")
    code, _, err = authgate("inspect", token)
    assert code == 0
    assert "shell history" in err
    assert token not in err
    code, _, err = authgate("inspect", "-", stdin=token)
    assert code == 0
    assert "shell history" not in err


def test_key_not_found_lists_the_kids_the_set_has(issuer: LocalIssuer) -> None:
    """A token naming a kid the JWKS lacks: the answer lists the kids it has, since a wrong
    key id is the usual cause."""
    stranger = TokenFactory(key=SigningKey("ES256", kid="not-published"), issuer=issuer.url)
    code, out, _ = authgate(
        "verify", "-", "--issuer", issuer.url, "--jwks", issuer.jwks_url, "--alg", "ES256",
        stdin=stranger.mint("x"),
    )  # fmt: skip
    assert code == 1
    assert "reason: key_not_found" in out
    assert f"kids: {issuer.factory.key.kid}" in out


def test_an_unreachable_key_set_is_said_once() -> None:
    """Exit 3 prints its cause once (the library's own log line no longer repeats it)."""
    token = TokenFactory(key=SigningKey("ES256", kid="k"), issuer="http://127.0.0.1:9").mint()
    code, out, err = authgate(
        "verify", "-", "--issuer", "http://127.0.0.1:9", "--jwks", "http://127.0.0.1:9/keys",
        "--alg", "ES256", stdin=token,
    )  # fmt: skip
    assert code == 3
    assert out == ""
    assert err.count("the connection was refused") == 1


def test_verify_refuses_what_the_middleware_refuses_beyond_the_signature(
    issuer: LocalIssuer,
) -> None:
    """A bound token (cnf) as a Bearer token and a token living longer than a day verify as
    JWTs, and the middleware still refuses them: so does `verify`, saying why (and the bound
    one, what it needs)."""
    import time

    args = ["--issuer", issuer.url, "--audience", "api://orders", "--jwks", issuer.jwks_url]
    bound = issuer.mint("ada", cnf=DPoPClient().cnf)
    code, out, _ = authgate("verify", "-", *args, "--json", stdin=bound)
    said = json.loads(out)
    assert (code, said["valid"], said["reason"]) == (1, False, "unverified_binding")
    assert "Authorization: DPoP" in said["hint"]
    now = int(time.time())
    long_lived = issuer.mint("bob", iat=now, exp=now + 2 * 86400)
    code, out, _ = authgate("verify", "-", *args, stdin=long_lived)
    assert code == 1
    assert "lives longer than this server accepts" in out
    longer = ["--max-token-lifetime", str(3 * 86400)]
    assert authgate("verify", "-", *args, *longer, stdin=long_lived)[0] == 0
    for wrong in ("0", "-5", "nan"):  # a usage mistake (exit 2), never a refused token
        code, _, err = authgate("verify", "-", *args, "--max-token-lifetime", wrong, stdin=bound)
        assert (code, "max_token_lifetime must be" in err) == (2, True)
