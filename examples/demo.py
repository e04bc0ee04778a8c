"""authgate demo: verify tokens against a local identity provider, and show each verdict.

Starts a LocalIssuer (JWKS + OIDC discovery on 127.0.0.1), points a JWTVerifier at it through
OIDC discovery, and verifies a scripted set of tokens. Exits 0 when every verdict is the
expected one.
"""

from __future__ import annotations

import json
import sys
import time

from authgate import AuthGateError, JWTVerifier, KeyFetchPolicy, OIDCKeySource
from authgate.testing import LocalIssuer, SigningKey, b64url


def main() -> int:
    with LocalIssuer("RS256", audience="demo-api") as issuer:
        verifier = JWTVerifier(
            # a short unknown-kid cooldown so the demo can show a rotation (default: 30 s)
            OIDCKeySource(issuer.url, policy=KeyFetchPolicy(cooldown=0.2)),
            algorithms=["RS256"],
            issuer=issuer.url,
            audience="demo-api",
        )
        stranger = SigningKey("RS256", kid=issuer.factory.key.kid)
        unsigned = f"{b64url(json.dumps({'alg': 'none'}))}.{b64url(json.dumps({'sub': 'x'}))}."
        cases = [
            ("valid token", issuer.mint("alice"), "alice"),
            ("expired", issuer.mint("bob", exp=int(time.time()) - 3600), "expired"),
            ("wrong audience", issuer.mint("carol", aud="other-api"), "bad_audience"),
            ("alg: none", unsigned, "malformed"),
            ("unknown signing key", issuer.factory.mint("dave", key=stranger), "bad_signature"),
            ("not a JWT", "hello", "malformed"),
        ]
        ok = True
        print(f"{'request':<22}{'verdict':<16}{'µs':>8}")
        print("-" * 46)
        for label, token, expected in [*cases, ("rotated key", "", "erin")]:
            if label == "rotated key":
                issuer.rotate()
                time.sleep(0.25)  # past the cooldown: the unknown kid triggers one refetch
                token = issuer.mint("erin")
            started = time.perf_counter()
            try:
                verdict = str(verifier.verify(token)["sub"])
            except AuthGateError as exc:
                verdict = exc.reason
            elapsed = (time.perf_counter() - started) * 1e6
            mark = "" if verdict == expected else f"   <-- expected {expected}"
            ok &= verdict == expected
            print(f"{label:<22}{verdict:<16}{elapsed:>8.0f}{mark}")
        print(f"\nJWKS fetches: {issuer.jwks_requests} (the first request, then the rotation)")
    print("all verdicts as expected" if ok else "UNEXPECTED VERDICTS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
