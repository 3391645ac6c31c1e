"""SIGKILL during `db compress`, of binprice or of the PostgreSQL server, at several points of
the month's transaction: afterwards every trade answers exactly once (all as rows, or all as
blocks, never both, never neither) and a rerun completes.

The points are reached deterministically: the test holds a lock that the compress transaction
needs at that point, waits until the compress backend queues for it (pg_locks), and kills.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from binprice import embedded
from binprice.db import migrations
from binprice.db.compress import compress
from tests.test_compress import MAY, TRADES_SQL, _filled

#: Where to stop: the relation whose lock the compress transaction waits for, and the mode
#: the test holds it in.
POINTS = {
    # CREATE TABLE … (LIKE trade_blocks): before any block is written.
    "before-blocks": ("trade_blocks", "ACCESS EXCLUSIVE"),
    # The check reads trade_minutes: every block built, nothing swapped.
    "built-not-checked": ("trade_minutes", "ACCESS EXCLUSIVE"),
    # The catalog row is the last write: rows truncated, blocks attached, not committed.
    "swapped-not-committed": ("compressed_months", "SHARE"),
}
WAIT_SLICE_SECONDS = 0.01
COMPRESS = (
    "import sys; from binprice.db.compress import compress; import psycopg, datetime; "
    "compress(psycopg.connect(sys.argv[1], autocommit=True), "
    "datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC))"
)
WAITING_SQL = "SELECT pid FROM pg_locks WHERE NOT granted AND relation = to_regclass(%s)"


def _wait_for_waiter(
    conn: psycopg.Connection[Any], relation: str, process: subprocess.Popen[bytes]
) -> int:
    """The pid of the backend queued for `relation`, once it is; fails if `process` ends."""
    while True:
        row = conn.execute(WAITING_SQL, (relation,)).fetchone()
        if row is not None:
            return int(row[0])
        try:
            process.wait(timeout=WAIT_SLICE_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"compress ended (exit {process.returncode}) before it reached the point")


def kill_client_at(url: str, relation: str, mode: str, code: str) -> None:
    """Run `code` (given `url` as argv[1]) in a process, SIGKILL it once its backend queues for
    `relation`, which the test holds in `mode`, and wait until the orphaned backend is gone."""
    with psycopg.connect(url) as holder:
        holder.execute(f"LOCK TABLE {relation} IN {mode} MODE")
        process = subprocess.Popen([sys.executable, "-c", code, url])
        backend = _wait_for_waiter(holder, relation, process)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        holder.rollback()  # the orphaned backend goes on, then finds its client gone
        while holder.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)
        ).fetchone():
            holder.rollback()


def kill_server_at(
    server: embedded.ServerInfo, data_dir: Path, relation: str, mode: str, code: str
) -> str:
    """Run `code` (given the server's URL as argv[1]) in a process, SIGKILL the postmaster once
    the process's backend queues for `relation`, held in `mode`; the restarted server's URL."""
    url = server.url()
    holder = psycopg.connect(url)
    holder.execute(f"LOCK TABLE {relation} IN {mode} MODE")
    process = subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.DEVNULL)
    _wait_for_waiter(holder, relation, process)
    os.kill(server.pid, signal.SIGKILL)
    process.wait()
    holder.close()
    restarted = embedded.ensure_server(data_dir)
    assert restarted.pid != server.pid
    return restarted.url()


def _answers_once(url: str, rows: list[tuple[Any, ...]]) -> str:
    """Every trade answers once; "rows" or "blocks" says where they all are."""
    with psycopg.connect(url) as conn:
        assert conn.execute(TRADES_SQL.format("trades_all")).fetchall() == rows
        (in_rows,) = conn.execute("SELECT count(*) FROM trades_2026_04").fetchone()  # type: ignore[misc]
        (in_blocks,) = conn.execute("SELECT coalesce(sum(trades), 0) FROM trade_blocks").fetchone()  # type: ignore[misc]
        (listed,) = conn.execute("SELECT count(*) FROM compressed_months").fetchone()  # type: ignore[misc]
    assert (in_rows, in_blocks, listed) in ((len(rows), 0, 0), (0, len(rows), 1))
    return "rows" if in_rows else "blocks"


def _rerun_completes(url: str, rows: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        compress(conn, MAY)
    assert _answers_once(url, rows) == "blocks"


@pytest.mark.parametrize("point", list(POINTS))
def test_kill_binprice_mid_compress(database_url: str, point: str) -> None:
    """SIGKILL of the compressing process: the transaction never commits, the rows stay."""
    relation, mode = POINTS[point]
    with _filled(database_url) as conn:
        rows = conn.execute(TRADES_SQL.format("trades")).fetchall()
    kill_client_at(database_url, relation, mode, COMPRESS)
    assert _answers_once(database_url, rows) == "rows"
    _rerun_completes(database_url, rows)


@pytest.mark.slow
@pytest.mark.parametrize("point", list(POINTS))
def test_kill_postgres_mid_compress(reachable_tmp: Path, point: str) -> None:
    """SIGKILL of the postmaster, then a restart (crash recovery): rows or blocks, never
    both, never neither; then a rerun completes."""
    relation, mode = POINTS[point]
    data_dir = reachable_tmp / "data"
    server = embedded.ensure_server(data_dir)
    url = server.url()
    migrations.upgrade(url)
    with _filled(url) as conn:
        rows = conn.execute(TRADES_SQL.format("trades")).fetchall()
    restarted = kill_server_at(server, data_dir, relation, mode, COMPRESS)
    assert _answers_once(restarted, rows) == "rows"
    _rerun_completes(restarted, rows)
