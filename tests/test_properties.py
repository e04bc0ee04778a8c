"""Property tests (hypothesis): hostile input never crashes, and no mutation of a signed token
is accepted unless it still verifies over the same signing input.

Every input gives claims or an ``AuthGateError``, never another exception. A mutated token
that verifies must be the original, or a re-encoding of the same signature over the same
signing input (ECDSA's ``(r, n - s)`` twin), and carry the original claims.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authgate import Authenticator, AuthGateError, JWTProvider, JWTVerifier
from authgate.keys import _CURVES
from authgate.testing import SigningKey, TokenFactory

from .conftest import NOW, fixed_clock

ISSUER = "https://issuer.test"
KEYS = {
    "HS256": SigningKey("HS256", kid="h", private=b"p" * 32),
    "ES256": SigningKey("ES256", kid="e"),
    "EdDSA": SigningKey("EdDSA", kid="d"),
    "RS256": SigningKey("RS256", kid="r"),
}
FACTORIES = {
    alg: TokenFactory(key=key, issuer=ISSUER, clock=fixed_clock) for alg, key in KEYS.items()
}
VERIFIERS = {
    alg: JWTVerifier(factory.keyset(), algorithms=[alg], issuer=ISSUER, clock=fixed_clock, leeway=0)
    for alg, factory in FACTORIES.items()
}
ORIGINALS = {
    alg: factory.mint("user-1", scope="read", jti="fixed") for alg, factory in FACTORIES.items()
}
HOSTILE_STRINGS = ["\ud800", "\x00", "\u202e", "' OR 1=1 --", "a" * 300, "${jndi:x}", "%00", "é"]
HOSTILE_NUMBERS = ["1e400", "-1e400", "1" + "0" * 400, "9007199254740993", "-0", "1.5e308", "0.1"]
PROPERTY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    """Lenient base64url decoding (for building mutations)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ecdsa_twin(token: str) -> str:
    """The (r, n - s) twin of an ES256 token."""
    head, payload, signature = token.split(".")
    raw = unb64(signature)
    order = _CURVES["P-256"][2]
    s = int.from_bytes(raw[32:], "big")
    return f"{head}.{payload}.{b64(raw[:32] + (order - s).to_bytes(32, 'big'))}"


@st.composite
def mutation(draw: st.DrawFn, token: str) -> str:
    """One mutation of a valid token."""
    head, payload, signature = token.split(".")
    kind = draw(
        st.sampled_from(
            [
                "flip", "swap", "drop", "pad", "std-alphabet", "tail-bits", "json-edit-header",
                "json-edit-claims", "hostile-string", "hostile-number", "resign-none",
                "truncate", "duplicate-member", "whitespace", "twin",
            ]
        )
    )  # fmt: skip
    if kind == "flip":
        position = draw(st.integers(0, len(token) - 1))
        replacement = draw(st.sampled_from("AQgw-_.=+/ ~Zz09"))
        return token[:position] + replacement + token[position + 1 :]
    if kind == "swap":
        parts = [head, payload, signature]
        i, j = draw(st.permutations([0, 1, 2]))[:2]
        parts[i], parts[j] = parts[j], parts[i]
        return ".".join(parts)
    if kind == "drop":
        return ".".join(
            part
            for k, part in enumerate((head, payload, signature))
            if k != draw(st.integers(0, 2))
        )
    if kind == "pad":
        return f"{head}.{payload}.{signature}" + draw(st.sampled_from(["=", "==", ".", "..x"]))
    if kind == "std-alphabet":
        return token.replace("-", "+").replace("_", "/")
    if kind == "tail-bits":
        segment = draw(st.sampled_from([0, 1, 2]))
        parts = [head, payload, signature]
        last = parts[segment][-1]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        parts[segment] = parts[segment][:-1] + alphabet[(alphabet.index(last) + 1) % 64]
        return ".".join(parts)
    if kind in ("json-edit-header", "json-edit-claims"):
        target = json.loads(unb64(head if kind == "json-edit-header" else payload))
        member = draw(
            st.sampled_from(
                [
                    "alg",
                    "kid",
                    "typ",
                    "crit",
                    "b64",
                    "enc",
                    "iss",
                    "sub",
                    "exp",
                    "nbf",
                    "iat",
                    "aud",
                    "jku",
                    "x5u",
                ]
            )
        )
        value = draw(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.text(max_size=8),
                st.lists(st.integers(), max_size=2),
            )
        )
        target[member] = value
        edited = b64(json.dumps(target).encode())
        return (
            f"{edited}.{payload}.{signature}"
            if kind == "json-edit-header"
            else f"{head}.{edited}.{signature}"
        )
    if kind == "hostile-string":
        text = json.dumps(json.loads(unb64(payload)))[:-1]
        value = json.dumps(draw(st.sampled_from(HOSTILE_STRINGS)))  # escapes: ASCII JSON
        edited = b64((text + ', "name": ' + value + "}").encode())
        return f"{head}.{edited}.{signature}"
    if kind == "hostile-number":
        claims = json.loads(unb64(payload))
        name = draw(st.sampled_from(["exp", "nbf", "iat"]))
        claims.pop(name, None)
        text = (
            json.dumps(claims)[:-1] + f', "{name}": {draw(st.sampled_from(HOSTILE_NUMBERS))}' + "}"
        )
        return f"{head}.{b64(text.encode())}.{signature}"
    if kind == "resign-none":
        return f"{b64(json.dumps({'alg': draw(st.sampled_from(['none', 'None', 'NONE', 'nOnE'])), 'kid': 'x'}).encode())}.{payload}."
    if kind == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    if kind == "duplicate-member":
        text = unb64(payload).decode()
        edited = b64((text[:-1] + ', "sub": "admin"}').encode())
        return f"{head}.{edited}.{signature}"
    if kind == "whitespace":
        position = draw(st.integers(0, len(token)))
        return (
            token[:position] + draw(st.sampled_from([" ", "\t", "\n", "\r\n"])) + token[position:]
        )
    # twin: the other valid ECDSA signature (only meaningful for ES256; others stay put)
    return ecdsa_twin(token) if token.split(".")[0] == ORIGINALS["ES256"].split(".")[0] else token


def verify_or_error(verifier: JWTVerifier, token: str) -> dict[str, Any] | AuthGateError:
    """The claims, or the AuthGateError: any other exception fails the property."""
    try:
        return verifier.verify(token)
    except AuthGateError as exc:
        return exc


@pytest.mark.parametrize("alg", list(KEYS))
@PROPERTY
@given(data=st.data())
def test_no_mutation_crashes_or_is_accepted_unless_it_signs_the_same_input(
    alg: str, data: st.DataObject
) -> None:
    """Every mutation gives claims or an AuthGateError; an accepted one keeps the original's
    signing input and claims."""
    original = ORIGINALS[alg]
    mutated = data.draw(mutation(original))
    outcome = verify_or_error(VERIFIERS[alg], mutated)
    if isinstance(outcome, dict):
        assert mutated.rsplit(".", 1)[0] == original.rsplit(".", 1)[0]
        assert outcome == VERIFIERS[alg].verify(original)
        if mutated != original:
            assert alg == "ES256"  # only ECDSA has a second valid signature over one input


@PROPERTY
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(["authorization", "x-api-key", "cookie", "Authorization", "host"]),
            st.one_of(
                st.sampled_from([f"Bearer {ORIGINALS['HS256']}", "Bearer", "Bearer ", "Basic x"]),
                st.text(max_size=40),
            ),
        ),
        max_size=4,
    )
)
def test_any_header_list_gives_a_principal_none_or_an_authgate_error(
    headers: list[tuple[str, str]],
) -> None:
    """Authenticator.authenticate on arbitrary header pairs: a principal, None, or an
    AuthGateError; never another exception."""
    auth = Authenticator([JWTProvider("p", VERIFIERS["HS256"])], clock=fixed_clock)
    outcome: Any
    try:
        outcome = auth.authenticate(headers)
    except AuthGateError as exc:
        outcome = exc
    if isinstance(outcome, AuthGateError):
        assert outcome.status in (400, 401)
    else:
        assert outcome is None or outcome.subject == "user-1"


def test_the_mutations_include_accepted_twins() -> None:
    """The property can fail: the ES256 twin is accepted and is a different token."""
    twin = ecdsa_twin(ORIGINALS["ES256"])
    assert twin != ORIGINALS["ES256"]
    assert VERIFIERS["ES256"].verify(twin)["sub"] == "user-1"
    assert NOW > 0
