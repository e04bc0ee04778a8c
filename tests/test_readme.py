"""The snippets of the README and of the docs' pages: each complete program says what to install
and runs as written in a venv holding only that (the wheel built from this tree, its extras);
the rest say they are fragments."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    block
    for page in PAGES
    for block in re.findall(r"^ *```python\n(.*?)^ *```", page.read_text(), flags=re.M | re.S)
]
PROGRAMS = [block for block in BLOCKS if not block.lstrip().startswith("# fragment")]


def test_the_readme_has_programs_and_marked_fragments() -> None:
    """Every snippet is either a program run below or starts with '# fragment: …'."""
    assert len(PROGRAMS) >= 4
    for block in BLOCKS:
        block = block.lstrip()
        if block.startswith("# fragment"):
            assert re.match(r"# fragment: \S", block), block[:80]


NEEDS = re.compile(
    r"# needs: pip install ((?:'authgate\[[a-z,]+\]'|authgate)(?: [a-z][a-z0-9-]*)*)\n"
)
EXTRAS = set(re.findall(r"^\| `([a-z]+)` \|", (ROOT / "README.md").read_text(), flags=re.M))


def needs_of(program: str) -> list[str]:
    """What the program's first line says to install: authgate (with extras) and others."""
    found = NEEDS.match(program)
    assert found is not None, f"a program must start with '# needs: pip install …': {program[:80]}"
    return [part.strip("'") for part in found.group(1).split()]


def test_each_program_names_what_it_needs() -> None:
    """Every program's first line is what to pip install, naming only extras that exist."""
    assert {"fastapi", "django", "drf", "flask", "redis", "testing"} <= EXTRAS
    for program in PROGRAMS:
        named = needs_of(program)[0]
        extras = named[len("authgate[") : -1].split(",") if "[" in named else []
        assert set(extras) <= EXTRAS, named


@contextlib.contextmanager
def held(lock: Path) -> Iterator[None]:
    """An exclusive lock on ``lock`` (a file), across the suite's worker processes."""
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every worker of this run shares (pytest-xdist: the workers' common parent)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "readme-venvs"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def wheel(shared: Path) -> Path:
    """authgate as a user installs it: the wheel built from this tree (once per run)."""
    out = shared / "wheel"
    with held(shared / "wheel.lock"):
        if not list(out.glob("authgate-*.whl")):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "wheel",
                    "-q",
                    "--no-deps",
                    "-w",
                    str(out),
                    str(ROOT),
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
    (built,) = out.glob("authgate-*.whl")
    return built


@pytest.fixture(scope="session")
def environments(shared: Path, wheel: Path) -> Callable[[list[str]], Path]:
    """A venv per set of needs holding only those (built once per run, by whichever worker
    needs it first): its python."""

    def python_for(needs: list[str]) -> Path:
        home = shared / hashlib.sha256(" ".join(needs).encode()).hexdigest()[:16]
        python = home / "bin" / "python"
        with held(shared / f"{home.name}.lock"):
            if not (home / "ready").exists():
                subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True,
                               timeout=120)  # fmt: skip
                wanted = [str(wheel) + need[len("authgate") :] if need.startswith("authgate")
                          else need for need in needs]  # fmt: skip
                installed = subprocess.run(
                    [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                     *wanted],
                    capture_output=True,
                    text=True,
                    timeout=600,
                )  # fmt: skip
                assert installed.returncode == 0, installed.stderr[-3000:]
                (home / "ready").touch()
        return python

    return python_for


@pytest.mark.parametrize(
    "program", PROGRAMS, ids=[f"program-{i}" for i in range(1, len(PROGRAMS) + 1)]
)
def test_each_program_runs_with_only_what_it_names(
    program: str, tmp_path: Path, environments: Callable[[list[str]], Path]
) -> None:
    """The program runs to its end (its asserts included) in a venv holding only the wheel,
    the extras and the packages its first line names."""
    python = environments(needs_of(program))
    script = tmp_path / "snippet.py"
    script.write_text(program)
    done = subprocess.run(
        [
            str(python),
            "-W",
            "error::DeprecationWarning",
            "-W",
            "ignore:Using `httpx` with `starlette.testclient`:DeprecationWarning",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
