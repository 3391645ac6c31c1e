"""The lean live month (migration 0011): no covering time index, `at` and `range` through the
rollup's per-minute id ranges, and a one-pass rollup insert trigger with the same results."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from binprice.db import migrations
from binprice.db.partitions import ensure_partitions, prune
from binprice.db.queries import price_at, price_range
from tests.trades_data import Row, load

JAN = datetime(2026, 1, 1, tzinfo=UTC)
#: The revision before 0011, with the covering index and the sorting trigger.
BEFORE = "0009_prunes"
COVERING = "ix_trades_symbol_timestamp"


def _index_names(url: str) -> dict[str, set[str]]:
    """Each partition of trades and the names of its indexes' parents."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT c.relname, p.relname FROM pg_inherits AS t
            JOIN pg_class AS c ON c.oid = t.inhrelid
            JOIN pg_index AS x ON x.indrelid = c.oid
            JOIN pg_inherits AS xi ON xi.inhrelid = x.indexrelid
            JOIN pg_class AS p ON p.oid = xi.inhparent
            WHERE t.inhparent = 'trades'::regclass
            """
        ).fetchall()
    found: dict[str, set[str]] = {}
    for partition, index in rows:
        found.setdefault(str(partition), set()).add(str(index))
    return found


#: The rollup's columns since 0005 (0012 adds the market after them).
MINUTE_COLUMNS = (
    "symbol, minute, trades, volume, notional, high, low, first_id, last_id, open, close"
)


def _minutes(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT {MINUTE_COLUMNS} FROM trade_minutes ORDER BY symbol, minute"
        ).fetchall()


def _random_rows(seed: int) -> list[Row]:
    """Two symbols over three hours across a month end, several fills per millisecond, equal
    prices recurring (ties for open/close, high/low)."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 31, 22, 30, tzinfo=UTC)
    rows = []
    for symbol, count in (("BUSYUSDT", 3000), ("RAREUSDT", 30)):
        times = sorted(rng.randrange(3 * 3600 * 1000) for _ in range(count))
        for i, ms in enumerate(times):
            price = Decimal(rng.choice(["100.00", "100.01", "99.99", "100.00000001"]))
            qty = Decimal(rng.randrange(1, 10_000)) / Decimal(1000)
            rows.append(Row(symbol, 500 + i, price, qty, start + timedelta(milliseconds=ms)))
    return rows


def _load_in_batches(url: str, rows: list[Row], seed: int) -> None:
    """COPY in random-sized batches, as writers do, so minutes are merged across statements."""
    rng = random.Random(seed)
    i = 0
    while i < len(rows):
        n = rng.randint(1, 400)
        load(url, rows[i : i + n])
        i += n


def test_upgrade_drops_the_covering_index_from_every_partition_and_downgrade_restores_it(
    empty_database_url: str,
) -> None:
    """Existing months lose the index with the parent's; months made afterwards never get it;
    going back builds it again on every partition."""
    url = empty_database_url
    migrations.upgrade(url, BEFORE)
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, JAN, JAN + timedelta(days=40))
    load(url, [Row("BTCUSDT", 1, Decimal(1), Decimal(1), JAN + timedelta(days=33))])
    assert all(COVERING in names for names in _index_names(url).values())
    migrations.upgrade(url)
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, JAN + timedelta(days=70), JAN + timedelta(days=71))
    lean = _index_names(url)
    assert {"trades_2026_01", "trades_2026_02", "trades_2026_03", "trades_default"} <= set(lean)
    assert all(names == {"pk_trades", "ix_trades_timestamp_symbol"} for names in lean.values())
    migrations.downgrade(url, BEFORE)
    assert all(COVERING in names for names in _index_names(url).values())


def test_one_pass_rollup_trigger_keeps_the_same_minutes_as_the_sorting_one(
    empty_database_url: str, database_url: str
) -> None:
    """The same trades, COPYed in the same random batches at 0009 and at head: every column of
    every rollup minute is equal (open/close by lowest/highest id, across batches)."""
    migrations.upgrade(empty_database_url, BEFORE)
    rows = _random_rows(7)
    for url in (empty_database_url, database_url):
        with psycopg.connect(url) as conn:
            ensure_partitions(conn, JAN, JAN + timedelta(days=40))
        _load_in_batches(url, rows, seed=3)
    before, after = _minutes(empty_database_url), _minutes(database_url)
    assert len(after) > 150
    assert after == before


def test_at_holds_to_trade_time_when_ids_do_not_follow_it(database_url: str) -> None:
    """Within a minute, the trade found on each side is the nearest by time (then id), not by
    id, as the time index answered before: the rollup only narrows down which ids to read."""
    minute = JAN + timedelta(minutes=10)
    load(
        database_url,
        [
            Row("ODDUSDT", 10, Decimal("1.0"), Decimal(1), minute + timedelta(seconds=30)),
            Row("ODDUSDT", 11, Decimal("2.0"), Decimal(1), minute + timedelta(seconds=20)),
            Row("ODDUSDT", 12, Decimal("3.0"), Decimal(1), minute + timedelta(seconds=40)),
        ],
    )
    with psycopg.connect(database_url) as conn:
        (before,) = price_at(conn, minute + timedelta(seconds=26), ["ODDUSDT"], before=True)
        (nearest,) = price_at(conn, minute + timedelta(seconds=27), ["ODDUSDT"])
        (first,) = price_range(conn, minute, minute + timedelta(seconds=35), ["ODDUSDT"])
    assert (before.trade_id, nearest.trade_id) == (11, 10)
    assert (first.open, first.close, first.trades) == (Decimal("2.0"), Decimal("1.0"), 2)


def test_at_walks_minutes_across_months_and_past_pruned_minutes(database_url: str) -> None:
    """The nearest trade may lie months away (a quiet symbol), in another partition; and
    minutes whose trades were pruned with the rollup kept are walked past, not answered."""
    old = datetime(2025, 11, 3, 8, 0, tzinfo=UTC)
    kept = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, old, kept + timedelta(days=1))
    load(
        database_url,
        [
            Row("QUIETUSDT", 1, Decimal("5"), Decimal(1), old),
            Row("QUIETUSDT", 2, Decimal("6"), Decimal(1), old + timedelta(seconds=5)),
            Row("QUIETUSDT", 3, Decimal("7"), Decimal(1), kept),
        ],
    )
    with psycopg.connect(database_url) as conn:
        (between,) = price_at(conn, datetime(2026, 1, 5, tzinfo=UTC), ["QUIETUSDT"], before=True)
        assert between.trade_id == 2
        prune(conn, datetime(2025, 12, 1, tzinfo=UTC), keep_rollup=True)
        (after_cut,) = price_at(conn, old, ["QUIETUSDT"])
        assert price_at(conn, datetime(2026, 1, 5, tzinfo=UTC), ["QUIETUSDT"], before=True) == []
    assert after_cut.trade_id == 3


def test_range_takes_open_close_and_extremes_by_time_in_whole_minutes(database_url: str) -> None:
    """Open, close and the first trade at the high and low come from the trades' times (then
    ids) in the whole minutes of a window too, where the ends of the window hold no trade and
    the ids of those minutes do not follow their times."""
    first = JAN + timedelta(minutes=20)
    last = first + timedelta(minutes=2)
    load(
        database_url,
        [
            Row("ODDUSDT", 20, Decimal("5.0"), Decimal(1), first + timedelta(seconds=40)),
            Row("ODDUSDT", 21, Decimal("9.0"), Decimal(1), first + timedelta(seconds=10)),
            Row("ODDUSDT", 22, Decimal("1.0"), Decimal(1), first + timedelta(seconds=50)),
            Row("ODDUSDT", 23, Decimal("9.0"), Decimal(1), first + timedelta(seconds=5)),
            Row("ODDUSDT", 30, Decimal("7.0"), Decimal(1), last + timedelta(seconds=50)),
            Row("ODDUSDT", 31, Decimal("6.0"), Decimal(1), last + timedelta(seconds=20)),
            Row("ODDUSDT", 32, Decimal("1.0"), Decimal(1), last + timedelta(seconds=30)),
        ],
    )
    start, end = first - timedelta(seconds=30), last + timedelta(minutes=1, seconds=30)
    with psycopg.connect(database_url) as conn:
        (window,) = price_range(conn, start, end, ["ODDUSDT"])
    assert (window.open, window.close, window.trades) == (Decimal("9.0"), Decimal("7.0"), 7)
    assert window.high_at == first + timedelta(seconds=5)
    assert window.low_at == first + timedelta(seconds=50)
