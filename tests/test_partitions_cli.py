"""`binprice db prune` and `binprice db partitions` through the real CLI process."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import psycopg

from tests.conftest import run_binprice
from tests.test_partitions import JAN, MAR, MONTH_ROWS, month_rows
from tests.trades_data import load

#: Every month of the test data (2025) ended more than a day ago.
OLDER_THAN = "1d"


def _months(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'trades'::regclass AND c.relname LIKE 'trades_2025%%'"
        ).fetchall()
    return {str(r[0]) for r in rows}


def _old_months(url: str) -> None:
    """January and February 2025, made as the writers would (through the DEFAULT partition)."""
    load(url, month_rows("BTCUSDT", 1, JAN) + month_rows("BTCUSDT", 1 + MONTH_ROWS, MAR))
    with psycopg.connect(url) as conn:
        conn.execute("SELECT binprice_ensure_trade_partitions(now(), now())").fetchall()


def test_prune_off_a_terminal_needs_yes_and_says_what_it_would_drop(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """Without --yes and no terminal to ask on: exit 2, the partitions named, nothing dropped."""
    _old_months(database_url)
    before = _months(database_url)
    refused = run_binprice(
        "--database-url", database_url, "db", "prune", "--older-than", OLDER_THAN, env=clean_env
    )
    assert refused.returncode == 2, refused.stderr
    assert "trades_2025_01, trades_2025_03" in refused.stderr and "--yes" in refused.stderr
    assert _months(database_url) == before == {"trades_2025_01", "trades_2025_03"}


def test_prune_with_yes_drops_and_reports_partitions_trades_and_bytes(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """--yes drops both months and says so in one line: partitions, trades, bytes, rollup."""
    _old_months(database_url)
    done = run_binprice(
        "--database-url",
        database_url,
        "db",
        "prune",
        "--older-than",
        OLDER_THAN,
        "--yes",
        env=clean_env,
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("dropped 2 partitions of trades (trades_2025_01, trades_2025_03)")
    assert f"{2 * MONTH_ROWS:,} trades" in line and " kB" in line
    assert line.endswith("their rollup minutes deleted")
    assert _months(database_url) == set()
    again = run_binprice(
        "--database-url", database_url, "db", "prune", "--older-than", OLDER_THAN, env=clean_env
    )
    assert again.returncode == 0 and again.stderr.startswith("nothing to prune"), again.stderr


def test_prune_counts_and_drops_a_thousand_old_rows_waiting_in_default(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """1,000 trades put by SQL into a month that has no partition (so into DEFAULT): the plan
    off a terminal names them, and --yes drops them, saying so with the exact count."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO trades SELECT 'BTCUSDT', i, 1, 1, %s::timestamptz + i * interval '1 min',"
            " false FROM generate_series(1, 1000) AS i",
            (JAN,),
        )
    args = ("--database-url", database_url, "db", "prune", "--older-than", OLDER_THAN)
    refused = run_binprice(*args, env=clean_env)
    assert refused.returncode == 2, refused.stderr
    assert "would drop 1 partition of trades (trades_2025_01)" in refused.stderr
    assert "1,000 trades (1,000 of them waiting in the DEFAULT partition)" in refused.stderr
    done = run_binprice(*args, "--yes", env=clean_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dropped 1 partition of trades (trades_2025_01)")
    assert "1,000 trades (1,000 of them moved out of the DEFAULT partition)" in done.stdout
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM trades").fetchone() == (0,)


def _on_a_terminal(url: str, answer: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `db prune --keep-rollup` with a pseudo-terminal as stdin and type `answer`."""
    master, slave = pty.openpty()
    os.write(master, answer.encode() + b"\n")  # waits in the terminal until the prompt reads it
    argv = [sys.executable, "-m", "binprice", "--database-url", url, "db", "prune"]
    done = subprocess.run(
        [*argv, "--older-than", OLDER_THAN, "--keep-rollup"],
        stdin=slave,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(master)
    os.close(slave)
    return done


def test_prune_asks_on_a_terminal_and_no_keeps_everything(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """On a terminal it asks first, naming what goes; "n" aborts with nothing dropped, "y"
    drops and keeps the rollup minutes as asked."""
    _old_months(database_url)
    declined = _on_a_terminal(database_url, "n", clean_env)
    assert declined.returncode == 1, declined.stderr
    assert "Drop 2 partitions of trades" in declined.stdout and "rollup" not in declined.stdout
    assert declined.stderr.strip() == "nothing was dropped"
    assert _months(database_url) == {"trades_2025_01", "trades_2025_03"}
    done = _on_a_terminal(database_url, "y", clean_env)
    assert done.returncode == 0 and "rollup minutes kept" in done.stdout
    assert _months(database_url) == set()


def test_db_partitions_lists_months_and_ensure_moves_default_rows(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """`db partitions` lists the DEFAULT partition last; --ensure makes the months ahead and
    the month of rows waiting in DEFAULT, naming them on stderr."""
    load(database_url, month_rows("BTCUSDT", 1, JAN))
    listed = run_binprice("--database-url", database_url, "db", "partitions", env=clean_env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == [
        "partition",
        "from",
        "to",
        "rows",
        "(est.)",
        "size",
    ]
    assert listed.stdout.splitlines()[-1].split()[:2] == ["trades_default", "DEFAULT"]
    made = run_binprice(
        "--database-url", database_url, "db", "partitions", "--ensure", env=clean_env
    )
    assert made.returncode == 0, made.stderr
    assert "created trades_2025_01" in made.stderr
    assert "trades_2025_01  2025-01-01  2025-02-01" in made.stdout
