"""MkDocs hook: the command-line reference, generated from the commands themselves.

`docs/cli.md` holds the marker below; at build time it becomes every command's `--help`
screen, exactly as `binprice … --help` prints it (run through Typer's own test runner), so the
reference cannot drift from the code. Groups (`binprice db`) are walked through their public
`list_commands`/`get_command`, which also loads the root's lazy commands.

mkdocs-typer2 was tried first: it reads a group's `commands` dict, which is empty for the lazily
loaded root, and it renders nothing (silently) when the app fails to load.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- binprice-cli-reference -->"
WIDTH = "88"


def _help(path: list[str]) -> str:
    from typer.testing import CliRunner

    from binprice.cli._app import cli

    result = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": WIDTH, "NO_COLOR": "1"})
    if result.exit_code != 0:
        raise RuntimeError(f"`binprice {' '.join(path)} --help` failed: {result.output}")
    return result.output.rstrip()


def _walk(command: Any, ctx: Any, path: list[str]) -> list[list[str]]:
    """Every command path under `command`, depth first, in the group's own order."""
    paths = [path]
    list_commands = getattr(command, "list_commands", None)
    if list_commands is None:
        return paths
    for name in list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or getattr(sub, "hidden", False):
            continue
        paths += _walk(sub, ctx, [*path, name])
    return paths


def reference() -> str:
    """The reference in Markdown: one section per command, its help screen verbatim."""
    import typer

    from binprice.cli._app import app

    ctx = typer.Context(app, info_name="binprice")
    sections = []
    for path in _walk(app, ctx, []):
        title = " ".join(["binprice", *path])
        level = "##" if len(path) <= 1 else "###"
        sections.append(f"{level} `{title}`\n\n```text\n{_help(path)}\n```\n")
    return "\n".join(sections)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference())
