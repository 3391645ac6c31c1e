"""The structure read from the code: no module imports, at any level, a module that imports it back.

An import inside a function or under `if TYPE_CHECKING:` is an import all the same: a lazy import
only hides a cycle, it does not remove it. A cycle is broken by moving the shared names to the
module that owns the concept, which both sides then import.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(name: str, tree: ast.AST, known: frozenset[str], package: bool) -> set[str]:
    """The binprice modules `name` imports anywhere in `tree`: the most specific module each
    statement names (`from binprice import embedded` is binprice.embedded), relative imports
    resolved, `importlib.import_module("…")` with a literal name included."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".")[: len(name.split(".")) - node.level + package]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return (found & known) - {name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in (SRC / "binprice").rglob("*.py")}
    known = frozenset(paths)
    return {
        name: imported_modules(name, ast.parse(path.read_text()), known, path.stem == "__init__")
        for name, path in paths.items()
    }


def cycles(graph: Mapping[str, set[str]]) -> Iterator[list[str]]:
    """Each group of modules that reach one another (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                yield from visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(group) > 1:
                yield sorted(group)

    for node in sorted(graph):
        if node not in index:
            yield from visit(node)


def test_no_module_imports_at_any_level_a_module_that_imports_it_back() -> None:
    """No import cycle among binprice's modules, counting imports inside functions."""
    graph = import_graph()
    found = [
        "\n".join(f"  {m} imports {', '.join(sorted(graph[m] & set(group)))}" for m in group)
        for group in cycles(graph)
    ]
    assert not found, "import cycles:\n" + "\n\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from binprice import embedded", {"binprice.embedded"}),
        ("from binprice.embedded import ServerInfo", {"binprice.embedded"}),
        ("def f():\n    from . import _start", {"binprice.embedded._start"}),
        ("if TYPE_CHECKING:\n    import binprice.errors", {"binprice.errors"}),
        ("import_module('binprice.embedded._start')", {"binprice.embedded._start"}),
        ("import os\nfrom pathlib import Path", set()),
    ],
    ids=["package-submodule", "package-name", "relative-in-function", "type-checking", "dynamic",
         "outside"],
)  # fmt: skip
def test_every_kind_of_import_is_an_edge(source: str, expected: set[str]) -> None:
    """Imports in functions, under TYPE_CHECKING, relative and dynamic ones all count."""
    known = frozenset({"binprice.embedded", "binprice.embedded._start", "binprice.errors"})
    name = "binprice.embedded._control"
    assert imported_modules(name, ast.parse(source), known, package=False) == expected


def test_a_cycle_through_a_lazy_import_is_found() -> None:
    """Two modules importing each other, however deep, are one cycle; a chain is none."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert list(cycles(graph)) == [["a", "b", "c"]]
    assert list(cycles({"a": {"b"}, "b": set()})) == []


#: Rooms that must not reach into others, beyond having no cycle: completeness serves the
#: pipeline through small interfaces (`GapBuffer`, `GapRecorder`, `IdTracker`, …), and the
#: exchange client knows neither the pipeline, nor completeness, nor the database.
FORBIDDEN = {
    "binprice.completeness": ("binprice.ingest",),
    "binprice.exchange": ("binprice.ingest", "binprice.completeness", "binprice.db"),
}


def within(name: str, room: str) -> bool:
    return name == room or name.startswith(f"{room}.")


def forbidden_imports(graph: Mapping[str, set[str]]) -> list[str]:
    """`a imports b` for each import `FORBIDDEN` rules out, at any level (functions too)."""
    return sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        for room, banned in FORBIDDEN.items()
        if within(name, room)
        for target in targets
        if any(within(target, other) for other in banned)
    )


def test_completeness_and_exchange_import_nothing_above_them() -> None:
    """completeness imports nothing of ingest/; exchange nothing of ingest/, completeness/, db/."""
    assert forbidden_imports(import_graph()) == []


def test_the_room_rule_sees_a_forbidden_import() -> None:
    """The rule's own reading: a submodule of a room importing into a banned room is found."""
    graph = {
        "binprice.completeness.gapkeeper": {"binprice.ingest.buffer", "binprice.db.gaprows"},
        "binprice.exchange.rest": {"binprice.errors"},
        "binprice.ingest.pipeline": {"binprice.completeness.gapkeeper"},
    }
    assert forbidden_imports(graph) == [
        "binprice.completeness.gapkeeper imports binprice.ingest.buffer"
    ]


#: SQL keywords that start a statement: a string beginning with one is SQL text.
SQL_TEXT = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|COPY|CREATE|TRUNCATE|WITH|ALTER|DROP|LOCK|SHOW|VACUUM)\b"
)
SQL_CALLS = frozenset({"execute", "executemany", "copy"})
#: Where SQL may live besides db/: the embedded server creates the `binprice` database before
#: there is one to connect to (server set-up, not the schema); the test exchange is no client.
SQL_ELSEWHERE = ("binprice/db/", "binprice/embedded/", "binprice/testing/")


def sql_sites(tree: ast.AST) -> list[int]:
    """Lines of `tree` that run SQL (`.execute`/`.executemany`/`.copy`) or hold SQL text
    (string literals and f-strings, docstrings aside)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    lines = []
    for node in ast.walk(tree):
        calls_sql = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
        )
        sql_text = (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL_TEXT.match(node.value) is not None
        )
        if calls_sql or sql_text:
            lines.append(getattr(node, "lineno", 0))
    return sorted(set(lines))


def test_sql_lives_in_db() -> None:
    """No module outside db/ runs SQL or holds SQL text (server set-up and the test exchange
    aside): one home for the SQL, where the storage format changes in one room."""
    found = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if not any(part in path.as_posix() for part in SQL_ELSEWHERE)
        and (lines := sql_sites(ast.parse(path.read_text())))
    }
    assert found == {}


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("conn.execute('SELECT 1')", [1]),
        ("await cur.copy(STATEMENT)", [1]),
        ("QUERY = 'INSERT INTO trades VALUES (1)'", [1]),
        ("'''Select what to show.'''\nx = 'select nothing'", []),
        ("note = 'a bare COPY is faster'", []),
    ],
)
def test_the_sql_finder_sees_calls_and_statements_not_prose(source: str, lines: list[int]) -> None:
    """The rule's own reading: calls and statement text count; prose and docstrings do not."""
    assert sql_sites(ast.parse(source)) == lines
