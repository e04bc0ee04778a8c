"""Coverage-guided fuzzing (atheris) of what hostile clients and key publishers control.

Targets (``python fuzz/fuzz_targets.py TARGET [libFuzzer options]``):

- ``verify``: ``JWTVerifier.verify`` on arbitrary text, with HS256, ES256 and EdDSA keys;
- ``extract``: the credential extractor on arbitrary Authorization / x-api-key / cookie values;
- ``jwks``: the JWK and JWKS parsers on arbitrary documents.

Each may raise only ``AuthGateError`` (``ConfigurationError`` for key documents); anything else
is a crash, which atheris reports with the input that caused it (then: a regression test).
``make fuzz`` runs each for a bounded time, seeded from ``fuzz/corpus/`` (built from the RFC
vectors in ``tests/data``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from authgate import AuthGateError, ConfigurationError, JWTVerifier, KeySet
    from authgate.extract import extract_credential
    from authgate.keys import parse_jwks
    from authgate.testing import SigningKey

ROOT = Path(__file__).resolve().parent
KEYS = KeySet(
    [
        *SigningKey("HS256", kid="h", private=b"f" * 32).keyset().keys,
        *SigningKey("ES256", kid="e").keyset().keys,
        *SigningKey("EdDSA", kid="d").keyset().keys,
    ]
)
VERIFIER = JWTVerifier(KEYS, algorithms=["HS256", "ES256", "EdDSA"], clock=lambda: 1_300_000_000)


def fuzz_verify(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    token = provider.ConsumeUnicodeNoSurrogates(len(data)) if provider.ConsumeBool() else data
    with contextlib.suppress(AuthGateError):
        VERIFIER.verify(token)


def fuzz_extract(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    authorization = provider.ConsumeUnicode(64) if provider.ConsumeBool() else None
    api_key = provider.ConsumeUnicode(64) if provider.ConsumeBool() else None
    cookie = provider.ConsumeUnicode(64) if provider.ConsumeBool() else None
    with contextlib.suppress(AuthGateError):
        extract_credential(
            authorization,
            api_key,
            authorization_count=provider.ConsumeIntInRange(0, 3),
            cookie_header=cookie,
            cookie_name="session",
        )


def fuzz_jwks(data: bytes) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        document = data
    with contextlib.suppress(ConfigurationError):
        parse_jwks(document if isinstance(document, dict | str | bytes) else data)


TARGETS = {"verify": fuzz_verify, "extract": fuzz_extract, "jwks": fuzz_jwks}


def main() -> None:
    target = sys.argv.pop(1)
    atheris.Setup(sys.argv, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
