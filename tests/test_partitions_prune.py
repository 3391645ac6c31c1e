"""`prune`: whole old months dropped, counted, recorded, and honoured by the completeness check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import binprice
from binprice.db.candles import candles
from binprice.db.gaps import verify_gaps
from binprice.db.partitions import ensure_partitions, list_partitions, plan_prune, prune
from binprice.errors import DatabaseBusyError
from tests.test_partitions import APR, FEB, JAN, MAR, MONTH_ROWS, month_rows, rollup, three_months
from tests.trades_data import load


def _prunes(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT pruned_before, partitions, trades, bytes > 0, rollup_kept FROM prunes"
        ).fetchall()


def _names(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    return {p.name for p in list_partitions(conn)}


def _filled(url: str) -> None:
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, JAN, APR)
    load(url, three_months())


def test_prune_drops_whole_old_months_counts_them_and_records_the_cut(database_url: str) -> None:
    """A cut in mid-March drops January and February (not March, which has not ended by
    then), with their rollup minutes; the count is exact; the cut is recorded."""
    _filled(database_url)
    with psycopg.connect(database_url) as conn:
        planned = plan_prune(conn, MAR + timedelta(days=14))
        assert _names(conn) >= {"trades_2025_01", "trades_2025_02"}  # a plan changes nothing
        result = prune(conn, MAR + timedelta(days=14))
        left = _names(conn)
        stored = conn.execute("SELECT count(*), min(timestamp) FROM trades").fetchone()
        assert verify_gaps(conn).ok  # March's first id follows January's: not a hole
    assert [p.name for p in result.partitions] == ["trades_2025_01", "trades_2025_02"]
    assert result.trades == planned.trades == 3 * MONTH_ROWS  # BTC twice, ETH once
    assert result.bytes == planned.bytes > 0
    assert result.pruned_before == MAR and result.done and not planned.done
    assert not {"trades_2025_01", "trades_2025_02"} & left and "trades_2025_03" in left
    assert stored == (MONTH_ROWS, MAR)
    assert {m[1] >= MAR for m in rollup(database_url)} == {True}
    assert _prunes(database_url) == [(MAR, 2, 3 * MONTH_ROWS, True, False)]


def test_nothing_older_than_the_cut_drops_nothing(database_url: str) -> None:
    """A cut before every month's end drops nothing and records nothing."""
    _filled(database_url)
    with psycopg.connect(database_url) as conn:
        result = prune(conn, JAN + timedelta(days=20))
    assert result.partitions == () and result.trades == 0 and result.pruned_before is None
    assert _prunes(database_url) == []


def test_pruned_history_is_not_reported_as_holes_even_with_the_rollup_kept(
    database_url: str,
) -> None:
    """An unrecorded hole in January makes the check fail; after a prune that keeps the rollup
    (so January's minutes, hole included, are still there) the check starts at the cut and
    passes, and January's candles are still answered from the rollup."""
    _filled(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM trades WHERE symbol = 'BTCUSDT' AND trade_id = 10")
        conn.commit()
        assert not verify_gaps(conn).ok
        before = candles(conn, ["BTCUSDT"], "1d", JAN, FEB)
        prune(conn, FEB + timedelta(days=1), keep_rollup=True)
        check = verify_gaps(conn)
        after = candles(conn, ["BTCUSDT"], "1d", JAN, FEB)
    assert check.ok, check
    assert after == before and len(after) == 3  # 50 hourly trades: three days
    assert _prunes(database_url) == [(FEB, 1, MONTH_ROWS - 1, True, True)]


def test_prune_takes_rows_waiting_in_default_with_their_month(database_url: str) -> None:
    """Rows of an old month that never had a partition are in DEFAULT: the prune makes their
    month, then drops it with the others; DEFAULT is left empty."""
    load(database_url, month_rows("SOLUSDT", 1, JAN))
    with psycopg.connect(database_url) as conn:
        result = prune(conn, FEB)
        waiting = conn.execute("SELECT count(*) FROM trades_default").fetchone()
    assert [p.name for p in result.partitions] == ["trades_2025_01"]
    assert result.trades == MONTH_ROWS and waiting == (0,)


def _default_count(conn: psycopg.Connection[tuple[object, ...]]) -> object:
    return conn.execute("SELECT count(*) FROM trades_default").fetchone()


def test_the_plan_counts_rows_waiting_in_default_exactly_and_the_prune_drops_them(
    database_url: str,
) -> None:
    """Old months that exist only as rows in DEFAULT (December, January; beside a real February
    partition) are in the plan with their exact counts, as the months the prune makes and
    drops; rows in DEFAULT of a month the cut has not ended (March 10th) stay."""
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, FEB, MAR)
    load(database_url, month_rows("SOLUSDT", 1, JAN) + month_rows("SOLUSDT", 51, FEB))
    load(database_url, month_rows("SOLUSDT", 101, MAR + timedelta(days=9), 5))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO trades SELECT 'ETHUSDT', i, 1, 1, %s::timestamptz + i * interval '1 s',"
            " true FROM generate_series(1, 7) AS i",
            (JAN - timedelta(days=20),),
        )
        conn.commit()
        planned = plan_prune(conn, MAR + timedelta(days=14))
        assert _default_count(conn) == (MONTH_ROWS + 12,)  # a plan changes nothing
        result = prune(conn, MAR + timedelta(days=14))
        waiting = _default_count(conn)
        left = conn.execute("SELECT count(*) FROM trades_2025_03").fetchone()
    months = ["trades_2024_12", "trades_2025_01", "trades_2025_02"]
    assert [p.name for p in planned.partitions] == [p.name for p in result.partitions] == months
    assert planned.trades == result.trades == 2 * MONTH_ROWS + 7
    assert planned.from_default == result.from_default == MONTH_ROWS + 7
    assert planned.bytes > 0 and result.bytes > 0
    assert result.pruned_before == MAR and waiting == (0,) and left == (5,)
    assert {m[1] >= MAR for m in rollup(database_url)} == {True}
    assert _prunes(database_url) == [(MAR, 3, 2 * MONTH_ROWS + 7, True, False)]


def test_rows_put_straight_into_default_are_counted_without_the_rollup(
    database_url: str,
) -> None:
    """A writer inserting into trades_default itself fires no rollup trigger of trades: the
    plan and the prune still count its rows exactly (not from the rollup, which has none)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO trades_default SELECT 'BTCUSDT', i, 1, 1,"
            " %s::timestamptz + i * interval '1 min', false FROM generate_series(1, 1000) AS i",
            (JAN,),
        )
        conn.commit()
        assert rollup(database_url) == []
        planned = plan_prune(conn, FEB)
        result = prune(conn, FEB)
        left = conn.execute("SELECT count(*) FROM trades WHERE timestamp < %s", (FEB,))
        assert left.fetchone() == (0,)
    assert planned.trades == result.trades == result.from_default == 1000
    assert [p.name for p in result.partitions] == ["trades_2025_01"]


def test_a_prune_that_cannot_lock_trades_gives_up_and_changes_nothing(database_url: str) -> None:
    """While another session reads trades in an open transaction, the DROP cannot get its lock:
    after the timeout prune raises DatabaseBusyError, and every month and row is still there."""
    _filled(database_url)
    with psycopg.connect(database_url) as reader, psycopg.connect(database_url) as conn:
        reader.execute("SELECT count(*) FROM trades").fetchone()  # holds ACCESS SHARE till commit
        before = _names(conn)
        with pytest.raises(DatabaseBusyError, match="nothing was dropped"):
            prune(conn, APR, lock_timeout=timedelta(milliseconds=50))
        reader.rollback()
        assert _names(conn) == before
        assert conn.execute("SELECT count(*) FROM trades").fetchone() == (4 * MONTH_ROWS,)
    assert _prunes(database_url) == []


def test_the_store_plans_prunes_and_reports_as_the_commands_do(database_url: str) -> None:
    """Through `binprice.connect()`: the plan names what a prune drops (a cut may be a string,
    as on the command line), the prune drops it, and `status` and `partitions` then say so."""
    _filled(database_url)
    with binprice.connect(database_url) as store:
        assert store.status().trades == 4 * MONTH_ROWS
        planned = store.plan_prune(MAR + timedelta(days=14))
        result = store.prune("2025-03-15T00:00:00Z", keep_rollup=True)
        assert [p.name for p in result.partitions] == [p.name for p in planned.partitions]
        assert result.trades == planned.trades == 3 * MONTH_ROWS and result.rollup_kept
        store.ensure_partitions()
        assert store.ensure_partitions() == []  # every month ahead is made
        names = {p.name for p in store.partitions()}
        after = store.status("btcusdt")
    assert not {"trades_2025_01", "trades_2025_02"} & names and "trades_2025_03" in names
    assert datetime.now(UTC).strftime("trades_%Y_%m") in names
    assert after.pruned_before == MAR and [s.symbol for s in after.symbols] == ["BTCUSDT"]
    assert after.trades == MONTH_ROWS
