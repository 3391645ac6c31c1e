"""The command line is a thin layer over the library: every command module talks to `Store`.

A command module is a module of `binprice/cli/` that defines commands (`@commands.command` or
`@commands.callback` on its own Typer app).
Read from its syntax tree, at any level (inside functions and under `TYPE_CHECKING` too), it may
import from binprice only:

- the public API: `binprice` itself (names in `binprice.__all__`: `Store`, the options
  dataclasses, result types, the error tree), `binprice._store` and `binprice.errors`;
- the command line's own input language, pure functions without I/O: `binprice.timespec`
  (times, durations, windows) and `binprice.symbols` (symbol names);
- rendering, `binprice.cli.views.*`: what a result looks like;
- the rest of the command line: the app (`_app`), the signal runner (`_signals`) and other
  command modules (which obey this same rule).

And it never reaches past `Store` to the database: no `.connection` attribute is read.
Everything else (the database, the pipeline, history, SQL) is the library's, behind `Store`.
"""

from __future__ import annotations

import ast
from dataclasses import MISSING, fields
from functools import cache
from pathlib import Path

import pytest

import binprice

CLI = Path(__file__).resolve().parents[1] / "src" / "binprice" / "cli"

ALLOWED = frozenset(
    {"binprice", "binprice._store", "binprice.errors", "binprice.timespec", "binprice.symbols"}
)

#: Commands that are no Store call, and why. `exchange` runs the test exchange (no database).
KNOWN_EXCEPTIONS = {
    ("_exchange", "binprice.testing.cli"),
    # `demo` chains `ingest` and `latest` (Store calls) around a local test exchange, in a data
    # directory of its own: the default one's place comes from the settings.
    ("_demo", "binprice.testing.process"),
    ("_demo", "binprice.settings"),
}


@cache
def command_modules() -> dict[str, ast.Module]:
    """Every module of binprice/cli that defines a command, by stem."""
    found = {}
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text())
        if any(_is_command(node) for node in ast.walk(tree)):
            found[path.stem] = tree
    return found


def _is_command(node: ast.AST) -> bool:
    if not isinstance(node, ast.FunctionDef):
        return False
    for decorator in node.decorator_list:
        call = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (
            isinstance(call, ast.Attribute)
            and call.attr in ("command", "callback")
            and isinstance(call.value, ast.Name)
            and call.value.id == "commands"  # a module's own app (the root's is `cli`)
        ):
            return True
    return False


def violations(stem: str, tree: ast.Module) -> list[str]:
    """What `tree` (the command module `stem`) imports or reads that the rule forbids."""
    public = set(binprice.__all__)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            module, names = "", []
            for alias in node.names:
                if alias.name.startswith("binprice") and not _allowed(stem, alias.name):
                    found.append(f"line {node.lineno}: import {alias.name}")
            continue
        elif isinstance(node, ast.Attribute) and node.attr == "connection":
            found.append(f"line {node.lineno}: reads .connection past Store")
            continue
        else:
            continue
        if not (module == "binprice" or module.startswith("binprice.")):
            continue
        if module == "binprice":
            found += [
                f"line {node.lineno}: binprice.{n} is not public" for n in names if n not in public
            ]
        elif not _allowed(stem, module):
            found.append(f"line {node.lineno}: from {module} import {', '.join(names)}")
    return found


#: The command line's own modules a command module may use besides the views.
CLI_MODULES = frozenset({"binprice.cli", "binprice.cli._app", "binprice.cli._signals"})


def _allowed(stem: str, module: str) -> bool:
    return (
        module in ALLOWED
        or module in CLI_MODULES
        or module == "binprice.cli.views"
        or module.startswith("binprice.cli.views.")
        or module.removeprefix("binprice.cli.") in command_modules()
        or (stem, module) in KNOWN_EXCEPTIONS
    )


def test_the_command_modules_are_found() -> None:
    """The rule reads every module that defines a command (and only those)."""
    assert set(command_modules()) == {
        "_db",
        "_demo",
        "_exchange",
        "_explore",
        "_gaps",
        "_import",
        "_ingest",
        "_queries",
        "_status",
    }


@pytest.mark.parametrize("stem", sorted(command_modules()))
def test_a_command_module_calls_only_store_and_rendering(stem: str) -> None:
    """A command module imports the public API, the CLI's own modules and its input parsing,
    and never reads the store's connection: every command is one Store call."""
    assert violations(stem, command_modules()[stem]) == []


#: What draws output; a command module hands its result to a view instead.
DRAWING = frozenset({"rich", "plotext", "matplotlib"})


@pytest.mark.parametrize("stem", sorted(command_modules()))
def test_a_command_module_draws_nothing_itself(stem: str) -> None:
    """Rendering lives in `binprice.cli.views`: no command module imports a drawing library."""
    imported = set()
    for node in ast.walk(command_modules()[stem]):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
    assert imported & DRAWING == set()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from binprice import Store, IngestOptions", []),
        ("from binprice import db", ["line 1: binprice.db is not public"]),
        ("def f():\n    from binprice.db import connect",
         ["line 2: from binprice.db import connect"]),
        ("import binprice.history", ["line 1: import binprice.history"]),
        ("def f(store):\n    return store.connection", ["line 2: reads .connection past Store"]),
        ("from binprice.cli.views.queries import to_json", []),
        ("from binprice.cli._queries import emit", []),
        ("from binprice.cli._helpers import x", ["line 1: from binprice.cli._helpers import x"]),
        ("from binprice.timespec import parse_window", []),
    ],
    ids=["public", "private-package", "in-function", "plain-import", "connection", "view",
         "command-module", "not-a-view", "timespec"],
)  # fmt: skip
def test_the_rule_catches_every_way_past_store(source: str, expected: list[str]) -> None:
    """Imports in functions, plain imports, private names and the raw connection all count."""
    assert violations("_queries", ast.parse(source)) == expected


def test_each_ingest_option_has_the_same_default_in_the_command() -> None:
    """`binprice ingest` fills IngestOptions by parameter name: every field is an option of
    the command with the dataclass's default (or none the command offers, listed here)."""
    import typer

    from binprice.cli._app import app

    with typer.Context(app) as ctx:
        command = app.get_command(ctx, "ingest")
    assert command is not None
    defaults = {param.name: param.default for param in command.params}
    not_offered = {"listing_interval"}  # a library knob: the CLI re-reads the listing hourly
    for field in fields(binprice.IngestOptions):
        if field.name in not_offered:
            continue
        assert field.name in defaults, field.name
        expected = () if field.name == "quotes" else field.default
        assert field.default is not MISSING
        got = defaults[field.name]
        assert (tuple(got) if field.name == "quotes" and got else got or expected) == expected, (
            field.name
        )
