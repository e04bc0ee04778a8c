"""The snippets of the README and of the docs' pages: each complete program runs as written; the
rest say they are fragments."""

from __future__ import annotations

import re
import subprocess
import sys
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


@pytest.mark.parametrize(
    "program", PROGRAMS, ids=[f"program-{i}" for i in range(1, len(PROGRAMS) + 1)]
)
def test_each_readme_program_runs(program: str, tmp_path: Path) -> None:
    """The program runs to its end (its asserts included) in a fresh interpreter."""
    script = tmp_path / "snippet.py"
    script.write_text(program)
    done = subprocess.run(
        [
            sys.executable,
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
