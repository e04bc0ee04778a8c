"""The curve constants the ECDSA check uses, against the standards (FIPS 186-4 / SEC 2)."""

from __future__ import annotations

import math
import random

import pytest

from authgate.keys import _CURVES

# Field primes, written as the standards define them (independent of the table under test).
PRIMES = {
    "P-256": 2**256 - 2**224 + 2**192 + 2**96 - 1,
    "P-384": 2**384 - 2**128 - 2**96 + 2**32 - 1,
    "P-521": 2**521 - 1,
}
# Group orders as printed in FIPS 186-4 D.1.2 (decimal), a second, independent spelling.
ORDERS = {
    "P-256": 115792089210356248762697446949407573529996955224135760342422259061068512044369,
    "P-384": int(
        "39402006196394479212279040100143613805079739270465446667946905279627659399113263569398"
        "956308152294913554433653942643"
    ),
    "P-521": int(
        "68647976601306097149819007990813932172694353001433054093944634591855431833976553942450"
        "57746333217197532963996371363321113864768612440380340372808892707005449"
    ),
}
BITS = {"P-256": 256, "P-384": 384, "P-521": 521}
WIDTH = {"P-256": 32, "P-384": 48, "P-521": 66}


def probably_prime(n: int, rounds: int = 32) -> bool:
    """Miller-Rabin with random bases."""
    if n < 4:
        return n in (2, 3)
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    rng = random.Random(7)
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
def test_each_group_order_is_the_standard_one(crv: str) -> None:
    """n equals the FIPS 186-4 value, has the curve's bit length, is prime, and lies within the
    Hasse bound of p + 1 (cofactor 1): an extra or missing byte fails every one of these."""
    _, width, order = _CURVES[crv]
    assert order == ORDERS[crv]
    assert order.bit_length() == BITS[crv]
    assert width == WIDTH[crv] == math.ceil(BITS[crv] / 8)
    assert probably_prime(order)
    p = PRIMES[crv]
    assert abs(order - (p + 1)) <= 2 * math.isqrt(p) + 2
