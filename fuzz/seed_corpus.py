"""Build fuzz/corpus/<target>/ from the RFC vectors in tests/data (run by ``make fuzz``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VECTORS = json.loads((ROOT.parent / "tests" / "data" / "rfc_jws_vectors.json").read_text())


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def jwks(value: object) -> list[object]:
    if isinstance(value, dict):
        found = [value] if "kty" in value else []
        return found + [j for item in value.values() for j in jwks(item)]
    if isinstance(value, list):
        return [j for item in value for j in jwks(item)]
    return []


def write(target: str, seeds: list[bytes]) -> None:
    folder = ROOT / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (folder / hashlib.sha256(seed).hexdigest()[:16]).write_bytes(seed)


def main() -> None:
    tokens = [s for s in strings(VECTORS) if s.count(".") in (2, 4)]
    write("verify", [t.encode() for t in tokens])
    write(
        "extract", [b"\x01Bearer " + t.encode() for t in tokens] + [b"\x01Basic x", b"\x00\x01key"]
    )
    write("jwks", [json.dumps({"keys": [j]}).encode() for j in jwks(VECTORS)])


if __name__ == "__main__":
    main()
