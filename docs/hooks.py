"""MkDocs hook: the README, SECURITY.md and CHANGELOG.md at the repository's root become the
site's front page, security page and changelog (one text, read on GitHub and on the site)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

PAGES = {"README.md": "index.md", "SECURITY.md": "security.md", "CHANGELOG.md": "changelog.md"}


def on_files(files: Files, config: Any) -> Files:
    root = Path(config["config_file_path"]).parent
    for source, name in PAGES.items():
        text = (root / source).read_text(encoding="utf-8").replace("](docs/", "](")
        for other, page in PAGES.items():
            text = text.replace(f"]({other})", f"]({page})")
        files.append(File.generated(config, name, content=text))
    return files
