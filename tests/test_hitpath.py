"""The ASGI hit path: the C twin and the Python twin answer every case alike.

``PyHitPath`` is the specification. Each case runs on both; a fuzz test compares them on
thousands of random scopes; and the C one is checked for leaked references and for holding
its entry while the clock (arbitrary Python code) runs.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from authgate import Principal
from authgate._hitpath import Factory, PyHitPath, hit_path, speedups

try:
    from authgate._speedups import HitPath as CHitPath
except ImportError:  # pragma: no cover - the C twin was not built here
    CHitPath = None

TOKEN = b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
NOW = 1_900_000_000.0
ALICE = Principal(subject="alice", provider="test", verified_by="cache")

IMPLEMENTATIONS = [
    pytest.param(PyHitPath, id="python"),
    pytest.param(
        CHitPath,
        id="c",
        marks=pytest.mark.skipif(CHitPath is None, reason="the C twin was not built"),
    ),
]


def scope(headers: Any = None, **fields: Any) -> dict[str, Any]:
    """An HTTP scope carrying ``TOKEN`` unless other headers are given."""
    base: dict[str, Any] = {
        "type": "http",
        "path": "/orders",
        "headers": [(b"host", b"api.test"), (b"authorization", TOKEN), (b"accept", b"*/*")]
        if headers is None
        else headers,
    }
    base.update(fields)
    return base


def build(
    factory: Factory,
    entries: dict[bytes, tuple[float, Principal]] | None = None,
    clock: Callable[[], float] = lambda: NOW,
    exclude: frozenset[str] = frozenset(),
) -> Callable[[Any], Principal | None]:
    return factory({TOKEN: (NOW + 60, ALICE)} if entries is None else entries, clock, exclude)


@pytest.fixture(params=IMPLEMENTATIONS)
def factory(request: pytest.FixtureRequest) -> Factory:
    impl: Factory = request.param
    return impl


def test_a_cached_bearer_value_is_a_hit(factory: Factory) -> None:
    """The cached principal itself comes back, for HTTP and WebSocket scopes alike."""
    hit = build(factory)
    assert hit(scope()) is ALICE
    assert hit(scope(type="websocket")) is ALICE
    listed = [[b"authorization", TOKEN], [b"host", b"x"]]  # items may be lists
    assert hit(scope(listed)) is ALICE


def test_a_hit_attaches_the_principal_and_a_miss_leaves_the_scope_alone(factory: Factory) -> None:
    """user, auth and state["principal"] on a hit (keeping other state); nothing on a miss."""
    hit = build(factory)
    fresh = scope()
    assert hit(fresh) is ALICE
    assert fresh["user"] is fresh["auth"] is fresh["state"]["principal"] is ALICE
    shared = scope(state={"db": "pool"})
    hit(shared)
    assert shared["state"] == {"db": "pool", "principal": ALICE}
    nothing = scope(state=None)
    hit(nothing)
    assert nothing["state"] == {"principal": ALICE}

    class State(dict[str, Any]):
        pass

    custom = scope(state=State())
    hit(custom)
    assert type(custom["state"]) is State
    assert custom["state"]["principal"] is ALICE
    missed = scope([(b"authorization", b"Bearer unknown")])
    before = dict(missed)
    assert hit(missed) is None
    assert missed == before


MISSES: list[Any] = [
    pytest.param(scope([(b"host", b"api.test")]), id="no-authorization"),
    pytest.param(scope([(b"authorization", TOKEN)] * 2), id="two-authorization"),
    pytest.param(scope([(b"x-api-key", b"k"), (b"authorization", TOKEN)]), id="api-key-before"),
    pytest.param(scope([(b"authorization", TOKEN), (b"x-api-key", b"k")]), id="api-key-after"),
    pytest.param(scope([(b"authorization", b"b" + TOKEN[1:])]), id="lowercase-scheme"),
    pytest.param(scope([(b"authorization", TOKEN + b" ")]), id="trailing-space"),
    pytest.param(scope([(b"authorization", b"Bearer ")]), id="empty-bearer"),
    pytest.param(scope([(b"authorization", b"Bearer")]), id="scheme-only"),
    pytest.param(scope([(b"authorization", TOKEN.decode())]), id="str-value"),
    pytest.param(scope([("authorization", TOKEN)]), id="str-name"),
    pytest.param(scope([(b"Authorization", TOKEN)]), id="uppercase-name"),
    pytest.param(scope(((b"authorization", TOKEN),)), id="headers-tuple"),
    pytest.param(scope([(b"authorization", TOKEN, b"x")]), id="three-item-header"),
    pytest.param(scope([b"authorization"]), id="bytes-item"),
    pytest.param(scope(type="lifespan"), id="lifespan"),
    pytest.param({"path": "/", "headers": [(b"authorization", TOKEN)]}, id="no-type"),
    pytest.param(scope(type=b"http"), id="bytes-type"),
    pytest.param({"type": "http"}, id="no-headers"),
    pytest.param(scope(headers=None, type="http") | {"headers": None}, id="headers-none"),
]


@pytest.mark.parametrize("request_scope", MISSES)
def test_anything_unusual_goes_to_the_full_path(factory: Factory, request_scope: Any) -> None:
    """Every request the hit path is not sure of returns None, so the full path decides."""
    assert build(factory)(request_scope) is None


def test_an_api_key_cache_key_spelled_as_authorization_is_no_hit(factory: Factory) -> None:
    """API keys are cached as ``x-api-key:<key>``: a raw Authorization value must not reach them."""
    entries = {b"x-api-key:secret": (NOW + 60, ALICE)}
    hit = build(factory, entries)
    assert hit(scope([(b"authorization", b"x-api-key:secret")])) is None


def test_expiry_is_checked_on_every_hit_with_the_cache_clock(factory: Factory) -> None:
    """Served while clock() < deadline, never at or after it; ints compare too."""
    now = [NOW + 59.5]
    hit = build(factory, clock=lambda: now[0])
    assert hit(scope()) is ALICE
    now[0] = NOW + 60
    assert hit(scope()) is None
    ints = build(factory, {TOKEN: (int(NOW) + 1, ALICE)}, clock=lambda: int(NOW))  # type: ignore[dict-item]
    assert ints(scope()) is ALICE


def test_the_wall_clock_itself_as_the_cache_clock(factory: Factory) -> None:
    """With ``time.time`` (the default), deadlines are compared with the real time."""
    live = build(factory, {TOKEN: (time.time() + 60, ALICE)}, clock=time.time)
    assert live(scope()) is ALICE
    gone = build(factory, {TOKEN: (time.time() - 0.001, ALICE)}, clock=time.time)
    assert gone(scope()) is None


def test_a_non_dict_scope_is_left_to_the_full_path(factory: Factory) -> None:
    """The hit path reads plain dict scopes only."""

    class Scope(dict[str, Any]):
        pass

    assert build(factory)(Scope(scope())) is None


def test_excluded_paths_are_never_authenticated(factory: Factory) -> None:
    """An excluded path is a miss (the middleware passes it through unauthenticated)."""
    hit = build(factory, exclude=frozenset({"/health"}))
    assert hit(scope(path="/health")) is None
    assert hit(scope(path="/orders")) is ALICE
    assert hit({"type": "http", "headers": [(b"authorization", TOKEN)]}) is None  # no path


def test_a_failing_clock_raises(factory: Factory) -> None:
    """The clock's error is not swallowed into a miss or a hit."""

    def broken() -> float:
        raise RuntimeError("clock broke")

    with pytest.raises(RuntimeError, match="clock broke"):
        build(factory, clock=broken)(scope())


def test_the_entry_survives_an_eviction_while_the_clock_runs(factory: Factory) -> None:
    """Another thread may evict the entry during clock(): the principal returned is still alive."""
    entries = {TOKEN: (NOW + 60, Principal(subject="evicted", provider="test"))}

    def evicting_clock() -> float:
        entries.clear()
        gc.collect()
        return NOW

    found = build(factory, entries, clock=evicting_clock)(scope())
    assert found is not None
    assert found.subject == "evicted"


@pytest.mark.skipif(CHitPath is None, reason="the C twin was not built")
def test_c_and_python_agree_on_random_scopes() -> None:
    """5,000 random scopes from a small alphabet of names, values, shapes and types."""
    rng = random.Random(7)
    names: list[Any] = [b"authorization", b"x-api-key", b"host", b"Authorization", "authorization"]
    values: list[Any] = [TOKEN, b"Bearer other", b"x-api-key:k", TOKEN.decode(), b"", None]
    values += [b"Bearer ", b"Bearer"]
    entries = {TOKEN: (NOW + 60, ALICE), b"x-api-key:k": (NOW + 60, ALICE)}
    entries[b"Bearer "] = entries[b"Bearer"] = (NOW + 60, ALICE)  # never cached; still alike
    entries[b"Bearer other"] = (NOW - 1, ALICE)
    exclude = frozenset({"/health"})
    c_hit, py_hit = (
        CHitPath(entries, lambda: NOW, exclude),
        PyHitPath(entries, lambda: NOW, exclude),
    )
    outcomes = set()
    for _ in range(5000):
        headers: list[Any] = []
        for _ in range(rng.randint(0, 4)):
            pair = [rng.choice(names), rng.choice(values)]
            shape = rng.random()
            headers.append(tuple(pair) if shape < 0.8 else pair if shape < 0.9 else tuple(pair[:1]))
        case: dict[str, Any] = {
            "type": rng.choice(["http", "http", "websocket", "lifespan"]),
            "path": rng.choice(["/orders", "/health"]),
            "headers": headers if rng.random() < 0.95 else tuple(headers),
        }
        expected = py_hit(case)
        assert c_hit(case) is expected, case
        outcomes.add(expected is ALICE)
    assert outcomes == {True, False}  # both hits and misses were exercised


@pytest.mark.skipif(CHitPath is None, reason="the C twin was not built")
def test_c_twin_leaks_no_references_or_memory() -> None:
    """100,000 hits and misses leave the principal's refcount and the heap where they were."""
    hit = CHitPath({TOKEN: (NOW + 60, ALICE)}, lambda: NOW, frozenset({"/health"}))
    requests = [scope(), scope(path="/health"), scope([(b"authorization", b"Bearer nope")])]
    for request in requests:  # warm up
        hit(request)
    refs = sys.getrefcount(ALICE)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(100_000 // len(requests)):
        for request in requests:
            hit(request)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert sys.getrefcount(ALICE) == refs
    assert grown < 4096


@pytest.mark.skipif(CHitPath is None, reason="the C twin was not built")
def test_c_twin_checks_its_arguments() -> None:
    """Wrong construction or call arguments are TypeErrors, not crashes."""
    with pytest.raises(TypeError):
        CHitPath([], lambda: NOW, frozenset())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        CHitPath({}, 1.0, frozenset())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CHitPath({}, lambda: NOW, {"/health"})  # type: ignore[arg-type]
    hit = CHitPath({}, lambda: NOW, frozenset())
    with pytest.raises(TypeError, match="one positional argument"):
        hit()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="one positional argument"):
        hit(scope(), scope())  # type: ignore[call-arg]
    assert repr(hit) == "HitPath(0 entries)"


def test_the_middleware_uses_the_fastest_twin_built() -> None:
    """``hit_path`` picks the C twin when it was built; CI insists that it was."""
    made = hit_path({}, lambda: NOW, frozenset())
    assert type(made) is (CHitPath if speedups else PyHitPath)
    if os.environ.get("AUTHGATE_REQUIRE_SPEEDUPS") and not os.environ.get("AUTHGATE_NO_SPEEDUPS"):
        assert speedups, "the C hit path was not built (is a C compiler installed?)"
