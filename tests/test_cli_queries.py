"""`binprice latest|at|range` as users run them: output shapes, errors, exit codes, imports."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from binprice.cli import app, command_named
from tests.conftest import run_binprice
from tests.trades_data import SMALL, load

LATEST_KEYS = ["symbol", "price", "timestamp", "trade_id"]
AT_KEYS = [*LATEST_KEYS, "requested", "offset_ms"]
RANGE_KEYS = [
    *("symbol", "start", "end", "open", "high", "low", "close"),
    *("high_at", "low_at", "trades", "volume", "vwap"),
]


@pytest.fixture
def url(database_url: str) -> str:
    """A database holding the SMALL fixture."""
    load(database_url, SMALL)
    return database_url


def binprice(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_binprice("--database-url", url, *args)


def test_latest_json_shape_and_exact_decimals(url: str) -> None:
    """--json is an array of objects with stable keys; decimals are exact strings."""
    done = binprice(url, "latest", "--json", "tinyusdt", "AAAUSDT")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [list(item) for item in data] == [LATEST_KEYS, LATEST_KEYS]
    assert data[0] == {
        "symbol": "TINYUSDT",
        "price": "0.00000001",
        "timestamp": "2026-01-01T00:00:02.000Z",
        "trade_id": 100,
    }
    assert data[1]["price"] == "12.00"


def test_at_json_shape(url: str) -> None:
    """at --json adds requested and offset_ms."""
    done = binprice(url, "at", "--ts", "2026-01-01T00:00:02Z", "--json", "AAAUSDT")
    assert done.returncode == 0, done.stderr
    (item,) = json.loads(done.stdout)
    assert list(item) == AT_KEYS
    assert item["trade_id"] == 3
    assert item["offset_ms"] == -1000
    assert item["requested"] == "2026-01-01T00:00:02.000Z"


def test_at_before_and_within(url: str) -> None:
    """--before is as-of; --within refuses far trades with exit 1."""
    done = binprice(url, "at", "--ts", "1767225602900", "--before", "--json", "AAAUSDT")
    assert json.loads(done.stdout)[0]["trade_id"] == 3
    far = binprice(url, "at", "--ts", "2026-01-01T01:00Z", "--within", "1m", "AAAUSDT")
    assert far.returncode == 1
    assert far.stderr.startswith("error: no trade within 1m")


def test_range_csv_shape(url: str) -> None:
    """range --csv has a header with the range keys and exact values."""
    done = binprice(
        url, "range", "--start", "2026-01-01", "--end", "2026-01-01T00:00:07Z", "--csv", "aaausdt"
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == RANGE_KEYS
    assert rows[0] == {
        "symbol": "AAAUSDT",
        "start": "2026-01-01T00:00:00.000Z",
        "end": "2026-01-01T00:00:07.000Z",
        "open": "10.00",
        "high": "12.00",
        "low": "9.00",
        "close": "9.00",
        "high_at": "2026-01-01T00:00:01.000Z",
        "low_at": "2026-01-01T00:00:03.000Z",
        "trades": "5",
        "volume": "8",
        "vwap": "10.1875",
    }


def test_range_json_shape_last(url: str) -> None:
    """--last ends now: the fixture is long past, so nothing is found (exit 1)."""
    done = binprice(url, "range", "--last", "1m", "--json")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "no trades from" in done.stderr


def test_missing_symbol_is_named_on_stderr_and_left_out(url: str) -> None:
    """A symbol without trades is reported on stderr; the others are printed; exit 0."""
    done = binprice(url, "latest", "--json", "NOPEUSDT", "AAAUSDT")
    assert done.returncode == 0
    assert [item["symbol"] for item in json.loads(done.stdout)] == ["AAAUSDT"]
    assert done.stderr.strip() == "no trades for: NOPEUSDT"


def test_nothing_found_exits_1_with_one_line(url: str) -> None:
    """Nothing found at all: one line, exit 1, no traceback."""
    done = binprice(url, "latest", "NOPEUSDT")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: no trades for NOPEUSDT"]


@pytest.mark.parametrize(
    "args",
    [
        ("at", "--ts", "yesterday"),
        ("at", "--ts", "now", "--within", "5x"),
        ("range", "--last", "1.5h"),
        ("range", "--start", "2026-13-01"),
        ("range",),
        ("range", "--last", "1m", "--start", "now"),
        ("range", "--start", "now", "--end", "-1m"),
        ("latest", "--json", "--csv"),
        ("latest", "BTC-USDT"),
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_input_exits_2_with_one_line(url: str, args: tuple[str, ...]) -> None:
    """Bad times, durations, windows or flags: exit 2 and a one-line reason."""
    done = binprice(url, *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_unreachable_database_is_one_line(tmp_path: object) -> None:
    """A database nobody listens on gives one line and a non-zero exit."""
    done = run_binprice("--database-url", "postgresql://u:secret@127.0.0.1:1/db", "latest")
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1
    assert "secret" not in done.stderr
    assert "Traceback" not in done.stderr


def test_schema_behind_head_is_one_line(database_url: str) -> None:
    """A database at an older revision asks for `db upgrade` in one line."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001_trades'")
    done = binprice(database_url, "latest")
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1
    assert "db upgrade" in done.stderr


def test_plain_text_table_in_a_pipe(url: str) -> None:
    """Without --json/--csv a pipe gets an aligned table with an 'ago' column for latest."""
    done = binprice(url, "latest")
    header, first, second = done.stdout.splitlines()
    assert header.split() == [*LATEST_KEYS, "ago"]
    assert first.split()[:2] == ["AAAUSDT", "12.00"]
    assert second.split()[:2] == ["TINYUSDT", "0.00000001"]


@pytest.mark.parametrize("command", ["latest", "at", "range"])
def test_query_commands_have_help(command: str) -> None:
    """Every query command and option has help text."""
    click_command = app.commands[command]  # type: ignore[attr-defined]
    assert click_command.help
    for param in click_command.params:
        if param.name not in {"ctx"}:
            assert getattr(param, "help", None), f"{command} {param.name} lacks help"


def test_cli_import_does_not_load_heavy_modules() -> None:
    """Importing the CLI and running a query command's imports loads no aiohttp/alembic/etc."""
    code = (
        "import sys\n"
        "import binprice.cli, binprice.db.queries, binprice.cli.views.queries, binprice.timespec\n"
        "heavy = {'aiohttp', 'alembic', 'sqlalchemy', 'rich', 'pydantic'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_latest_command_run_loads_no_heavy_modules(url: str) -> None:
    """A whole `latest` run (piped) imports neither Rich nor Alembic nor pydantic, nor any other
    command's module, nor the compressed format while no month is compressed."""
    code = (
        "import sys\n"
        "from binprice.cli import main\n"
        f"sys.argv = ['binprice', '--database-url', {url!r}, 'latest', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'aiohttp', 'alembic', 'sqlalchemy', 'rich', 'pydantic'}\n"
        "ours = {'binprice.cli._app', 'binprice.cli._queries',\n"
        "        'binprice.cli.views', 'binprice.cli.views.queries'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "             or m.startswith('binprice.cli.') and m not in ours\n"
        "             or m.startswith(('binprice.compressed', 'binprice.db.blockreads'))),\n"
        "      file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["latest", "BTCUSDT"], "latest"),
        (["--database-url", "postgresql://h/db", "at", "--ts", "now"], "at"),
        (["--database-url=postgresql://h/db", "range"], "range"),
        (["--version"], None),
        (["ingest", "latest"], "ingest"),
    ],
)
def test_the_command_of_a_command_line_skips_the_root_options(
    args: list[str], command: str | None
) -> None:
    assert command_named(args) == command


@pytest.mark.parametrize(("command", "one_shot"), [("latest", True), ("status", False)])
def test_a_one_shot_command_runs_without_the_cycle_collector_and_freezes_at_exit(
    command: str, one_shot: bool
) -> None:
    """`latest`, `at` and `range` turn the collector off for the run and freeze every object when
    done, so the exit's last full collection walks nothing; other commands keep it as it is."""
    code = (
        "import gc, sys\n"
        "from binprice.cli import main\n"
        f"sys.argv = ['binprice', '--database-url', 'postgresql://h/db', {command!r}, '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == f"{not one_shot} {one_shot}"
