"""MkDocs hook: the site's home page is the README, so the two never drift.

`docs/index.md` holds only the marker below; at build time it becomes the README with its
links into `docs/` made relative to the site.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MARKER = "<!-- binprice-readme -->"
README = Path(__file__).resolve().parents[2] / "README.md"


def site_markdown(readme: str) -> str:
    """The README as a page of the site: `docs/x.md` links become `x.md`, `docs/` the home."""
    text = re.sub(r"\]\(docs/\)", "](index.md)", readme)
    return re.sub(r"\]\(docs/([^)]+)\)", r"](\1)", text)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, site_markdown(README.read_text(encoding="utf-8")))
