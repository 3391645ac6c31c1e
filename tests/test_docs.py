"""The README stays a README (what a user runs), and the docs site holds the rest.

`mkdocs build --strict` itself runs in CI (`.ci/run`), where the `docs` extra is installed; these
checks need nothing beyond the test extra.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _hook(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_short_and_links_only_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    site = _hook("readme").site_markdown(readme)
    assert "](docs/" not in site
    for target in (ROOT / "docs").glob("*.md"):
        assert target.name != "index.md" or "<!-- binprice-readme -->" in target.read_text()
    linked = {part.split(")")[0] for part in readme.split("](docs/")[1:]}
    for link in linked - {""}:
        assert (ROOT / "docs" / link.split("#")[0]).is_file(), link


def _nav_files(nav: object) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(_nav_files(item) for item in nav))
    if isinstance(nav, dict):
        return set().union(*(_nav_files(value) for value in nav.values()))
    return set()


def test_every_page_is_in_the_site_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert pages == _nav_files(config["nav"])


def test_the_cli_reference_is_every_command_s_own_help() -> None:
    reference = _hook("cli_reference").reference()
    for command in ("ingest", "import", "latest", "at", "range", "db prune", "exchange"):
        assert f"`binprice {command}`" in reference
    # The help screens themselves, not a summary of them.
    assert "Usage: binprice db prune" in reference
    assert "--older-than" in reference
