"""SIGKILL during `db compress --days-before`, of binprice or of the PostgreSQL server, inside
a day's transaction (after the snapshot, before and after the DELETE of the day's rows):
afterwards every trade answers exactly once, each day all rows or all blocks, and a rerun
completes. The points are reached as in test_compress_kill: the test holds a lock the day's
transaction needs there and kills once the compress backend queues for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from binprice import embedded
from binprice.db import migrations
from binprice.db.compress_days import compress_day, compress_days
from tests.test_compress import APRIL, TRADES_SQL, _filled
from tests.test_compress_days import DAY, NEVER
from tests.test_compress_kill import kill_client_at, kill_server_at

POINTS = {
    # The day's rows read and encoded; its blocks about to be moved in.
    "encoded-not-written": ("trade_blocks_2026_04", "SHARE"),
    # The day's rows deleted, its blocks written; the catalog, its last write, to come.
    "deleted-not-committed": ("compressed_months", "SHARE"),
}
#: The days compressed by the killed run (April 2nd and 3rd); April 1st is done before.
CUT = APRIL + 3 * DAY
COMPRESS = (
    "import sys, datetime; import psycopg; from binprice.db.compress_days import compress_days; "
    "compress_days(psycopg.connect(sys.argv[1], autocommit=True), "
    "datetime.datetime(2026, 4, 4, tzinfo=datetime.UTC), "
    "months_before=datetime.datetime.min.replace(tzinfo=datetime.UTC))"
)
DAY_STATE_SQL = """
SELECT (SELECT count(*) FROM trades_2026_04 WHERE "timestamp" >= %(d)s
            AND "timestamp" < %(d)s + interval '1 day'),
       (SELECT coalesce(sum(trades), 0) FROM trade_blocks WHERE first_ts >= %(d)s
            AND first_ts < %(d)s + interval '1 day')"""


def _prepared(url: str) -> list[tuple[Any, ...]]:
    """April filled, its first day compressed (the month's blocks exist); every trade."""
    with _filled(url) as conn:
        compress_day(conn, APRIL)
        return conn.execute(TRADES_SQL.format("trades_all")).fetchall()


def _answers_once(url: str, rows: list[tuple[Any, ...]]) -> list[str]:
    """Every trade answers once; per killed day, "rows" or "blocks" (never both, never neither)."""
    states = []
    with psycopg.connect(url) as conn:
        assert conn.execute(TRADES_SQL.format("trades_all")).fetchall() == rows
        for day in (APRIL + DAY, APRIL + 2 * DAY):
            in_rows, in_blocks = conn.execute(DAY_STATE_SQL, {"d": day}).fetchone()  # type: ignore[misc]
            assert (in_rows == 0) != (in_blocks == 0), (day, in_rows, in_blocks)
            states.append("rows" if in_rows else "blocks")
    return states


def _rerun_completes(url: str, rows: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        compress_days(conn, CUT, months_before=NEVER)
    assert _answers_once(url, rows) == ["blocks", "blocks"]


@pytest.mark.parametrize("point", list(POINTS))
def test_kill_binprice_mid_day(database_url: str, point: str) -> None:
    """SIGKILL of the compressing process: the day under way never commits, its rows stay."""
    relation, mode = POINTS[point]
    rows = _prepared(database_url)
    kill_client_at(database_url, relation, mode, COMPRESS)
    assert _answers_once(database_url, rows) == ["rows", "rows"]
    _rerun_completes(database_url, rows)


@pytest.mark.slow
@pytest.mark.parametrize("point", list(POINTS))
def test_kill_postgres_mid_day(reachable_tmp: Path, point: str) -> None:
    """SIGKILL of the postmaster mid-day, then a restart (crash recovery): each day rows or
    blocks, never both, never neither; then a rerun completes."""
    relation, mode = POINTS[point]
    data_dir = reachable_tmp / "data"
    server = embedded.ensure_server(data_dir)
    url = server.url()
    migrations.upgrade(url)
    rows = _prepared(url)
    restarted = kill_server_at(server, data_dir, relation, mode, COMPRESS)
    assert _answers_once(restarted, rows) == ["rows", "rows"]
    _rerun_completes(restarted, rows)
