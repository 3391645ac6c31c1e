"""The command line as a layer: the error funnel inside the app, options anywhere, readable help.

These run in-process with Typer's CliRunner (the funnel is the app's own group class, so what
a test sees is what a user sees); only tests where the process boundary matters spawn one.
"""

from __future__ import annotations

import re

import pytest
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.testing import CliRunner

from binprice.cli import app, cli
from tests.trades_data import SMALL, load

runner = CliRunner()


def _commands(group: TyperGroup, prefix: str = "") -> list[tuple[str, TyperCommand | TyperGroup]]:
    out: list[tuple[str, TyperCommand | TyperGroup]] = []
    for name, command in group.commands.items():
        assert isinstance(command, TyperCommand | TyperGroup)
        out.append((f"{prefix}{name}", command))
        if isinstance(command, TyperGroup):
            out += _commands(command, f"{prefix}{name} ")
    return out


def test_every_command_and_option_has_help_and_no_python_type_in_it() -> None:
    """A person reads `--help`: every command and parameter explains itself, and metavars are
    words (SYMBOL..., TS, DURATION, REV), never `<list[str]>` or `<int range>`."""
    root = app
    assert isinstance(root, TyperGroup)
    for path, command in _commands(root):
        assert (command.help or "").strip(), path
        for param in command.params:
            if isinstance(param, TyperOption) and not param.hidden:
                assert (param.help or "").strip(), f"{path} {param.opts}"
        result = runner.invoke(cli, [*path.split(), "--help"], terminal_width=100)
        assert result.exit_code == 0, path
        assert not re.search(r"<[a-z]+\[|<int|<text>|<str>|<integer>", result.output), (
            path,
            result.output,
        )


def test_help_uses_readable_metavars() -> None:
    """The everyday commands say what goes where."""
    at_help = runner.invoke(cli, ["at", "--help"], terminal_width=100).output
    assert "--ts TS" in at_help and "--within DURATION" in at_help and "[SYMBOL]..." in at_help
    ingest_help = runner.invoke(cli, ["ingest", "--help"], terminal_width=100).output
    assert "--max-trades N" in ingest_help and "--duration DURATION" in ingest_help
    assert "REV" in runner.invoke(cli, ["db", "downgrade", "--help"]).output


def test_database_url_is_taken_before_or_after_the_command(database_url: str) -> None:
    """`binprice latest BTCUSDT --database-url …` and `binprice --database-url … latest`."""
    load(database_url, SMALL)
    after = runner.invoke(cli, ["latest", "AAAUSDT", "--json", "--database-url", database_url])
    before = runner.invoke(cli, ["--database-url", database_url, "latest", "AAAUSDT", "--json"])
    assert after.exit_code == before.exit_code == 0, after.output
    assert after.stdout == before.stdout and '"trade_id": 7' in after.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ingest", "--max-trades", "0"], "--max-trades"),
        (["ingest", "--duration", "0s"], "--duration must be positive"),
        (["ingest", "--duration", "soon"], "soon"),
        (["at", "AAAUSDT"], "--ts"),
        (["latest", "--bogus"], "--bogus"),
        (["latest", "BTC-USDT"], "invalid symbol 'BTC-USDT'"),
        (["ingest", "FOO/BAR"], "invalid symbol 'FOO/BAR'"),
        (["gaps", "--last", "1h"], "go with --verify or --repair"),
    ],
    ids=[
        "max-trades-0",
        "duration-0",
        "duration-bad",
        "missing-ts",
        "unknown-option",
        "bad-symbol",
        "bad-ingest-symbol",
        "window-without-verify",
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_database_is_touched(
    args: list[str], expected: str
) -> None:
    """Usage errors (click's and binprice's own) are one `error:` line, exit 2, and need no
    database: the URL given here does not exist."""
    result = runner.invoke(cli, [*args, "--database-url", "postgresql://x@127.0.0.1:1/none"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_nothing_found_is_exit_1_naming_what_was_asked(database_url: str) -> None:
    """The library answers []; the CLI says what was not found and exits 1."""
    load(database_url, SMALL)
    result = runner.invoke(cli, ["--database-url", database_url, "latest", "NOPEUSDT"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no trades for NOPEUSDT"
    partial = runner.invoke(cli, ["--database-url", database_url, "latest", "NOPEUSDT", "AAAUSDT"])
    assert partial.exit_code == 0 and "no trades for: NOPEUSDT" in partial.stderr


def test_an_unreachable_database_is_one_line_exit_1() -> None:
    """A library error reaches the user as one line through the funnel."""
    result = runner.invoke(cli, ["latest", "--database-url", "postgresql://x@127.0.0.1:1/none"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach PostgreSQL at 127.0.0.1:1/none")


def test_a_json_logged_error_does_not_change_how_the_next_command_reports() -> None:
    """`ingest --log-format json` reports its error as a JSON line; the next command run in the
    same process (as a CliRunner runs them) still says `error: …`."""
    url = "postgresql://bob:Tr0ub?4dor@127.0.0.1/db"  # refused before any connection
    logged = runner.invoke(cli, ["--database-url", url, "ingest", "--log-format", "json"])
    plain = runner.invoke(cli, ["--database-url", url, "latest", "BTCUSDT"])
    assert (logged.exit_code, plain.exit_code) == (2, 2)
    assert logged.stderr.startswith('{"time": ') and '"event": "fatal"' in logged.stderr
    assert plain.stderr.startswith("error: malformed database URL")
