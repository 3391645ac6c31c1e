"""The live month's closed days compressed while it is captured (#18 item 4): days before a
cut become blocks one REPEATABLE READ transaction each, every trade answers once, the rollup is
untouched, a live writer goes on meanwhile and its rows of a day under compression stay rows
until the next run merges them, and a writer that changes a merged day's rollup makes the day
retry instead of losing a trade."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

import binprice
from binprice.db.compress import CompressionCheckError, DayCompression, compressed_months
from binprice.db.compress_days import compress_day, compress_days, day_cut, plan_days
from binprice.db.status import month_states
from tests.fault_helpers import HANG_GUARD_SECONDS
from tests.test_compress import (
    APRIL,
    ROLLUP_OF_ALL_SQL,
    ROLLUP_SQL,
    TRADES_SQL,
    _all,
    _filled,
)
from tests.test_compress_kill import WAITING_SQL

#: "Never": no month ends before it (the months are compressed by days only here).
NEVER = datetime.min.replace(tzinfo=UTC)
DAY = timedelta(days=1)
CUT = APRIL + 5 * DAY
ROWS_BEFORE_SQL = 'SELECT count(*) FROM trades_2026_04 WHERE "timestamp" < %s'
BLOCK_TRADES_SQL = "SELECT coalesce(sum(trades), 0) FROM trade_blocks"


def _count(conn: psycopg.Connection[Any], query: str, *args: Any) -> int:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return int(row[0])


def test_days_before_the_cut_become_blocks_and_every_trade_answers_once(
    database_url: str,
) -> None:
    """Days 1-5 of April become blocks, day 6 on stay rows; every trade answers once, the
    rollup is unchanged, the month is in the catalog and shows as partly compressed."""
    with _filled(database_url) as conn:
        rows, rollup = _all(conn, "trades"), conn.execute(ROLLUP_SQL).fetchall()
        held = _count(conn, ROWS_BEFORE_SQL, CUT)
        plan = plan_days(conn, CUT + timedelta(hours=7), months_before=NEVER)
        assert [(d.day, d.action) for d in plan] == [
            (APRIL + i * DAY, "compress") for i in range(5)
        ]
        assert sum(d.trades for d in plan) == held
        done = compress_days(conn, CUT + timedelta(hours=7), months_before=NEVER)
        assert [(d.day, d.action, d.trades) for d in done] == [
            (d.day, d.action, d.trades) for d in plan
        ]
        assert all(d.blocks > 0 and d.retries == 0 for d in done)
        assert _count(conn, ROWS_BEFORE_SQL, CUT) == 0
        assert _count(conn, "SELECT count(*) FROM trades_2026_04") == len(rows) - held
        assert _count(conn, BLOCK_TRADES_SQL) == held
        assert _all(conn) == rows
        assert conn.execute(ROLLUP_SQL).fetchall() == rollup
        (month,) = compressed_months(conn)
        assert (month.month, month.trades) == (APRIL, held)
        (state,) = [m for m in month_states(conn) if m.month == APRIL]
        assert (state.storage, state.trades) == ("partly", len(rows))
        assert plan_days(conn, CUT, months_before=NEVER) == ()
        assert compress_days(conn, CUT, months_before=NEVER) == ()


def test_a_month_compressed_by_days_closes_into_a_whole_compressed_month(
    database_url: str,
) -> None:
    """When the month closes, `db compress` merges its last days of rows into its blocks."""
    from binprice.db.compress import compress

    with _filled(database_url) as conn:
        rows = _all(conn, "trades")
        compress_days(conn, CUT, months_before=NEVER)
        left = _count(conn, "SELECT count(*) FROM trades_2026_04")
        result = compress(conn, APRIL.replace(month=5))
        assert [(m.action, m.trades) for m in result.months] == [("merge", left)]
        assert _count(conn, "SELECT count(*) FROM trades_2026_04") == 0
        assert _count(conn, BLOCK_TRADES_SQL) == len(rows)
        assert _all(conn) == rows
        assert conn.execute(ROLLUP_SQL).fetchall() == conn.execute(ROLLUP_OF_ALL_SQL).fetchall()


def test_a_day_whose_blocks_disagree_with_the_rollup_changes_nothing(database_url: str) -> None:
    """The day's blocks are checked against the rollup before its rows go."""
    with _filled(database_url) as conn:
        rows = _all(conn, "trades")
        conn.execute(
            "UPDATE trade_minutes SET volume = volume + 1 WHERE symbol = 'ETHUSDT' AND minute = %s",
            (APRIL + DAY + timedelta(hours=2),),
        )
        compress_day(conn, APRIL)
        with pytest.raises(CompressionCheckError, match="2026-04-02"):
            compress_day(conn, APRIL + DAY)
        assert _count(conn, ROWS_BEFORE_SQL, APRIL + DAY) == 0
        assert _count(conn, ROWS_BEFORE_SQL, APRIL + 2 * DAY) > 0
        assert _all(conn) == rows


def _trade(trade_id: int, moment: datetime) -> Any:
    from binprice.exchange.protocol import WireTrade

    ms = int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))
    return WireTrade("BTCUSDT", trade_id, Decimal("70001.5"), Decimal("0.002"), ms, False)


class Paused:
    """`compress_days` in a thread of its own, stopped where it waits for a lock the test
    holds (`relation` in `mode`) until `release()`."""

    def __init__(self, url: str, relation: str, mode: str, before: datetime) -> None:
        self.holder = psycopg.connect(url)
        self.holder.execute(f"LOCK TABLE {relation} IN {mode} MODE")
        self.relation = relation
        self.result: tuple[DayCompression, ...] = ()
        self.error: BaseException | None = None

        def run() -> None:
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    self.result = compress_days(conn, before, months_before=NEVER)
            except BaseException as exc:  # reported by release()
                self.error = exc

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def wait_until_waiting(self) -> None:
        while self.holder.execute(WAITING_SQL, (self.relation,)).fetchone() is None:
            self.thread.join(timeout=0.01)
            assert self.thread.is_alive(), f"compress ended before the point: {self.error}"

    def release(self) -> tuple[DayCompression, ...]:
        self.holder.rollback()
        self.holder.close()
        self.thread.join(timeout=HANG_GUARD_SECONDS)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


#: Where the compress is paused while the writer writes: the lock it waits for there.
PAUSES = {
    # Rows read and encoded, the blocks about to be moved in: nothing deleted yet.
    "before-delete": ("trade_blocks_2026_04", "SHARE"),
    # The day's rows deleted, its last write (the catalog) to come.
    "after-delete": ("compressed_months", "SHARE"),
}


@pytest.mark.parametrize("pause", list(PAUSES))
def test_a_live_writer_goes_on_and_its_rows_of_a_day_being_compressed_stay_rows(
    database_url: str, pause: str
) -> None:
    """Paused inside its transaction (before or after the DELETE of its day's rows), the
    compress blocks no writer: the product's writer commits batches into today and into a day
    under compression. Those rows stay rows (the snapshot never saw them, so the DELETE does
    not take them), every trade answers once, and the next run merges them; nothing lost,
    nothing doubled."""
    from binprice.db.copy import CopyEncoder
    from binprice.db.writer import TradeWriter

    with _filled(database_url) as conn:
        rows = _all(conn, "trades")
        compress_day(conn, APRIL)  # the month's blocks exist: the pause point is reachable
    paused = Paused(database_url, *PAUSES[pause], APRIL + 3 * DAY)
    paused.wait_until_waiting()

    late_day = APRIL + DAY + timedelta(hours=5, milliseconds=321)  # a day under compression
    today = APRIL + 12 * DAY + timedelta(hours=1)
    written = [_trade(900_000 + i, today + timedelta(seconds=i)) for i in range(200)]
    written.append(_trade(899_999, late_day))

    async def write() -> None:
        writer = await TradeWriter.connect(database_url)
        encoder = CopyEncoder()
        try:
            for chunk in range(0, len(written), 50):
                await asyncio.wait_for(
                    writer.write(encoder.batch(written[chunk : chunk + 50])), HANG_GUARD_SECONDS
                )
        finally:
            await writer.close()

    asyncio.run(write())  # all committed while the compress transaction is open
    done = paused.release()
    assert [d.day for d in done] == [APRIL + DAY, APRIL + 2 * DAY]
    with psycopg.connect(database_url, autocommit=True) as conn:
        everything = conn.execute(TRADES_SQL.format("trades_all")).fetchall()
        assert len(everything) == len(rows) + len(written)
        assert {r[:2] for r in everything} == {r[:2] for r in rows} | {
            ("BTCUSDT", t.trade_id) for t in written
        }
        assert _count(conn, ROWS_BEFORE_SQL, APRIL + 3 * DAY) == 1  # the late row
        assert conn.execute(ROLLUP_SQL).fetchall() == conn.execute(ROLLUP_OF_ALL_SQL).fetchall()
        (merged,) = compress_days(conn, APRIL + 3 * DAY, months_before=NEVER)
        assert (merged.day, merged.action, merged.trades) == (APRIL + DAY, "merge", 1)
        assert _count(conn, ROWS_BEFORE_SQL, APRIL + 3 * DAY) == 0
        assert conn.execute(TRADES_SQL.format("trades_all")).fetchall() == everything
        assert conn.execute(ROLLUP_SQL).fetchall() == conn.execute(ROLLUP_OF_ALL_SQL).fetchall()


def test_a_writer_changing_a_merged_days_rollup_makes_the_day_retry(database_url: str) -> None:
    """A day with blocks gets a row repeating a block's trade (its rollup counted it twice),
    so merging recomputes the day's rollup. A writer that commits a trade into the same minute
    after the merge's snapshot makes its DELETE fail with a serialization failure: the day is
    tried again and takes that trade too; the rollup ends exact."""
    with _filled(database_url) as conn:
        rows = _all(conn, "trades")
        compress_day(conn, APRIL)
        repeated = conn.execute(
            'SELECT trade_id, price, quantity, "timestamp", is_buyer_maker FROM trades_all '
            "WHERE symbol = 'BTCUSDT' ORDER BY trade_id LIMIT 1 OFFSET 40"
        ).fetchone()
        assert repeated is not None
        insert = (
            'INSERT INTO trades (symbol, trade_id, price, quantity, "timestamp", '
            "is_buyer_maker) VALUES ('BTCUSDT', %s, %s, %s, %s, %s)"
        )
        conn.execute(insert, repeated)
        counted = "SELECT sum(trades) FROM trade_minutes"
        assert _count(conn, counted) == len(rows) + 1  # the writer counted it again
    # The merge deletes the day's old blocks: paused there, after its snapshot.
    paused = Paused(database_url, "trade_blocks_2026_04", "SHARE", APRIL + DAY)
    paused.wait_until_waiting()
    with psycopg.connect(database_url, autocommit=True) as writer:
        later = repeated[3] + timedelta(milliseconds=7)
        writer.execute(insert, (5_000_000, Decimal("70000.25"), Decimal("0.5"), later, True))
    (merged,) = paused.release()
    assert (merged.action, merged.retries) == ("merge", 1)
    with psycopg.connect(database_url) as conn:
        assert _count(conn, ROWS_BEFORE_SQL, APRIL + DAY) == 0
        everything = _all(conn)
        assert len(everything) == len(rows) + 1
        assert conn.execute(ROLLUP_SQL).fetchall() == conn.execute(ROLLUP_OF_ALL_SQL).fetchall()
        assert _count(conn, "SELECT sum(trades) FROM trade_minutes") == len(rows) + 1


def test_day_cut_is_the_start_of_the_utc_day() -> None:
    """Days before the cut's UTC day are compressed, whatever the offset given."""
    from datetime import timezone

    moment = datetime(2026, 4, 6, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    assert day_cut(moment) == datetime(2026, 4, 5, tzinfo=UTC)


def test_store_and_cli_compress_days_before(database_url: str) -> None:
    """`Store.compress(days_before=…)`: a dry run plans the days, then they are compressed;
    a duration counts back from `now`."""
    _filled(database_url).close()
    with binprice.connect(database_url) as store:
        now = APRIL + 6 * DAY + timedelta(hours=3)
        plan = store.compress(dry_run=True, days_before="1d", now=now)
        assert not plan.done and plan.months == ()
        assert [d.day for d in plan.days] == [APRIL + i * DAY for i in range(5)]
        done = store.compress(days_before="2026-04-03", now=now)
        assert [d.day for d in done.days] == [APRIL, APRIL + DAY]
        assert done.trades == sum(d.trades for d in done.days) > 0


def test_db_compress_days_before_command(database_url: str, clean_env: Any) -> None:
    """`db compress --days-before DATE --dry-run --json` plans the days, then compresses them;
    `status` shows the month as partly compressed."""
    import json
    import re

    from tests.conftest import run_binprice

    _filled(database_url).close()
    env = {**clean_env, "BINPRICE_DATABASE_URL": database_url}
    args = ("db", "compress", "--before", "2026-03", "--days-before", "2026-04-03")
    planned = run_binprice(*args, "--dry-run", "--json", env=env)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert (plan["done"], plan["months"]) == (False, [])
    assert [(d["day"], d["action"]) for d in plan["days"]] == [
        ("2026-04-01", "compress"),
        ("2026-04-02", "compress"),
    ]
    done = run_binprice(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert re.match(r"compressed day 2026-04-01: [\d,]+ trades -> blocks", done.stdout)
    again = run_binprice(*args, env=env)
    assert again.stdout.startswith("nothing to compress")
    text = run_binprice("status", env=env).stdout
    assert re.search(r"2026-04 partly +10,301 trades", text)


def test_ingest_compresses_a_day_once_it_ended_long_enough_ago(database_url: str) -> None:
    """With a lag of a day: 12 h after April 1st ended it waits; 25 h after, that day (only)
    becomes blocks, one event line; months are left to their own setting (here: off)."""
    from binprice.events import EventKind
    from binprice.ingest.compressing import compress_closed_months

    _filled(database_url).close()
    events: list[tuple[EventKind, str]] = []

    def emit(kind: EventKind, text: str) -> None:
        events.append((kind, text))

    async def at(now: datetime) -> None:
        lag = DAY.total_seconds()
        await compress_closed_months(
            database_url, emit, now=now, after=None, days_after=lag, retry_in=3600
        )

    asyncio.run(at(APRIL + DAY + timedelta(hours=12)))
    assert events == []
    asyncio.run(at(APRIL + 2 * DAY + timedelta(hours=1)))
    assert [(k, t.split(":")[0]) for k, t in events] == [
        (EventKind.PARTITIONS, "compressed day 2026-04-01")
    ]
    with psycopg.connect(database_url) as conn:
        assert _count(conn, ROWS_BEFORE_SQL, APRIL + DAY) == 0
        assert _count(conn, ROWS_BEFORE_SQL, APRIL + 2 * DAY) > 0


def test_ingest_options_default_to_a_one_day_lag() -> None:
    """`ingest` compresses the live month's days a day after they end unless told otherwise."""
    from binprice._options import IngestOptions
    from binprice.ingest.from_options import compress_after

    assert compress_after(IngestOptions().compress_days_after) == DAY.total_seconds()
    assert compress_after("off") is None


def test_the_rows_of_a_short_window_are_read_as_an_id_range(database_url: str) -> None:
    """Over a month with blocks, the rows of a range's or candle's end minutes are read from
    the primary key as the rollup minutes' id range, not as all of the symbol's rows filtered
    by time (what a live month compressed by days would pay on every `range`)."""
    import json

    from binprice.db.blockreads import WINDOWS_ROWS_SQL

    with _filled(database_url) as conn:
        compress_day(conn, APRIL)
        moment = APRIL + DAY + timedelta(hours=3, seconds=20)
        params = {
            "symbols": ["BTCUSDT"],
            "starts": [moment],
            "ends": [moment + timedelta(seconds=30)],
            "market": 0,
        }
        (plan,) = conn.execute("EXPLAIN (FORMAT JSON) " + WINDOWS_ROWS_SQL, params).fetchone()  # type: ignore[misc]
        scans = []

        def walk(node: dict[str, Any]) -> None:
            if node.get("Relation Name") == "trades_2026_04":
                scans.append(node)
            for child in node.get("Plans", []):
                walk(child)

        walk(plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"])
        assert scans, "the month's row partition is not read"
        assert all("trade_id >=" in scan.get("Index Cond", "") for scan in scans), scans


def test_a_symbol_whose_rows_are_all_blocks_resumes_after_its_last_block(
    database_url: str,
) -> None:
    """The ingest resumes each symbol after its highest stored id (`TradeWriter.last_trades`):
    ETHUSDT's last trades are in rows, then, once its days are blocks, in blocks; without
    them the run would start it at the first trade it hears and never look for the trades
    in between."""
    from binprice.db.writer import TradeWriter

    async def last() -> dict[str, tuple[int, int]]:
        writer = await TradeWriter.connect(database_url)
        try:
            return await writer.last_trades(("BTCUSDT", "ETHUSDT", "NONEUSDT"))
        finally:
            await writer.close()

    with _filled(database_url) as conn:
        before = asyncio.run(last())
        assert set(before) == {"BTCUSDT", "ETHUSDT"}
        compress_days(conn, APRIL + 20 * DAY, months_before=NEVER)
        assert _count(conn, "SELECT count(*) FROM trades_2026_04") == 0
    assert asyncio.run(last()) == before
