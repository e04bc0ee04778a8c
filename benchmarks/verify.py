"""Per-token cost of local JWT verification: authgate vs PyJWT vs the floor, in one run.

The floor is the least any correct verifier must do for the same token: split it, decode the
three base64url segments, parse the header and payload JSON, and run the bare `cryptography`
(or `hmac`) signature check. Rounds of each contender are interleaved so that machine noise
hits all of them alike; the table gives the median of the rounds.

Run: ``make bench`` or ``python benchmarks/verify.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hmac
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authgate import JWTVerifier
from authgate.testing import SigningKey, TokenFactory

ISSUER = "https://login.example.com/tenant-7f3a9c"
AUDIENCE = "https://api.example.com"


def realistic_claims() -> dict[str, Any]:
    """Claims of a typical access token (about 600 bytes once signed with HS256)."""
    return {
        "aud": AUDIENCE,
        "scope": "openid profile email orders:read orders:write",
        "email": "jane.doe@example.com",
        "name": "Jane Doe",
        "tenant": "acme-corp-eu",
        "azp": "web-frontend",
    }


def b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def floor_for(alg: str, key: SigningKey) -> Callable[[str], object]:
    """The bare minimum: split, decode, parse both JSON objects, check the signature."""
    loads = json.loads
    if alg == "HS256":
        secret = key.secret

        def check(msg: bytes, sig: bytes) -> None:
            if not hmac.compare_digest(hmac.digest(secret, msg, "sha256"), sig):
                raise ValueError

    elif alg == "RS256":
        public = key.private.public_key()
        pad, sha = padding.PKCS1v15(), hashes.SHA256()

        def check(msg: bytes, sig: bytes) -> None:
            public.verify(sig, msg, pad, sha)

    elif alg == "ES256":
        public = key.private.public_key()
        ecdsa = ec.ECDSA(hashes.SHA256())

        def check(msg: bytes, sig: bytes) -> None:
            r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            public.verify(encode_dss_signature(r, s), msg, ecdsa)

    else:
        public = key.private.public_key()

        def check(msg: bytes, sig: bytes) -> None:
            public.verify(sig, msg)

    def floor(token: str) -> object:
        h, p, s = token.split(".")
        loads(b64d(h))
        claims = loads(b64d(p))
        check(f"{h}.{p}".encode(), b64d(s))
        return claims

    return floor


def contenders(alg: str) -> tuple[str, dict[str, Callable[[str], object]]]:
    key = SigningKey(alg, kid="bench-key-2026-01")
    factory = TokenFactory(key=key, issuer=ISSUER, ttl=3600)
    token = factory.mint("user_7f3a9c2e1b", **realistic_claims())
    verifier = JWTVerifier(key.keyset(), algorithms=[alg], issuer=ISSUER, audience=AUDIENCE)
    prepared: Any = key.secret if alg == "HS256" else key.private.public_key()
    decode = pyjwt.decode

    def pyjwt_decode(tok: str) -> object:
        return decode(tok, prepared, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)

    return token, {
        "floor": floor_for(alg, key),
        "authgate": verifier.verify,
        "pyjwt": pyjwt_decode,
    }


def per_call_us(fn: Callable[[str], object], token: str, number: int) -> float:
    gc.collect()
    gc.disable()  # as timeit does
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn(token)
        return (time.perf_counter() - start) / number * 1e6
    finally:
        gc.enable()


def measure(alg: str, rounds: int, budget: float) -> dict[str, float]:
    token, funcs = contenders(alg)
    for fn in funcs.values():  # warm up, and prove each accepts the token
        fn(token)
    # size each round to ~budget seconds for the slowest contender
    slowest = max(per_call_us(fn, token, 50) for fn in funcs.values())
    number = max(50, int(budget * 1e6 / slowest))
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, fn in funcs.items():
            samples[name].append(per_call_us(fn, token, number))
    return {name: statistics.median(values) for name, values in samples.items()} | {
        "token_bytes": float(len(token))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per round")
    args = parser.parse_args()
    print(f"median of {args.rounds} interleaved rounds, µs per token (lower is better)\n")
    header = (
        f"{'alg':<7}{'bytes':>6}{'floor':>9}{'authgate':>10}{'pyjwt':>9}"
        f"{'authgate/floor':>16}{'pyjwt/floor':>13}"
    )
    print(header)
    print("-" * len(header))
    for alg in ("HS256", "RS256", "ES256", "EdDSA"):
        r = measure(alg, args.rounds, args.budget)
        print(
            f"{alg:<7}{int(r['token_bytes']):>6}{r['floor']:>9.2f}{r['authgate']:>10.2f}"
            f"{r['pyjwt']:>9.2f}{r['authgate'] / r['floor']:>15.2f}x"
            f"{r['pyjwt'] / r['floor']:>12.2f}x"
        )


if __name__ == "__main__":
    main()
