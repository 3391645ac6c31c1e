"""`range` through the per-minute rollup equals a brute-force answer, however the trades got in.

The rollup (`trade_minutes`, migration 0004) is kept by triggers, so the table is loaded the ways
a user or a tool might: COPY, INSERT ... ON CONFLICT DO NOTHING with re-sent rows, and then an
UPDATE and a DELETE of some rows. Random windows (sub-minute to hours, aligned or not) are
compared with an answer computed in Python from the rows themselves.
"""

from __future__ import annotations

import random
from dataclasses import astuple
from datetime import datetime, timedelta
from decimal import Context, Decimal

import psycopg

from binprice.db.queries import Range, price_range
from tests.trades_data import T0, Row, load

SYMBOLS = ("BUSYUSDT", "RAREUSDT")
SPAN = timedelta(hours=3)


def _rows(seed: int) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for symbol, count in (("BUSYUSDT", 6000), ("RAREUSDT", 40)):
        times = sorted(rng.randrange(int(SPAN.total_seconds() * 1000)) for _ in range(count))
        for i, ms in enumerate(times):
            # Few distinct prices, so equal highs and lows recur in several minutes.
            price = Decimal(rng.choice(["100.00", "100.01", "100.02", "99.99", "99.98", "0.5"]))
            qty = Decimal(rng.randrange(1, 10_000)) / Decimal(1000)
            rows.append(Row(symbol, 1000 + i, price, qty, T0 + timedelta(milliseconds=ms)))
    return rows


def _expected(rows: list[Row], symbol: str, start: datetime, end: datetime) -> tuple | None:
    inside = sorted(
        (r for r in rows if r.symbol == symbol and start <= r.timestamp < end),
        key=lambda r: (r.timestamp, r.trade_id),
    )
    if not inside:
        return None
    high = max(r.price for r in inside)
    low = min(r.price for r in inside)
    volume = sum((r.quantity for r in inside), Decimal(0))
    notional = sum((r.price * r.quantity for r in inside), Decimal(0))
    return (
        len(inside),
        inside[0].price,
        high,
        low,
        inside[-1].price,
        next(r.timestamp for r in inside if r.price == high),
        next(r.timestamp for r in inside if r.price == low),
        volume,
        Context(prec=28).divide(notional, volume),
    )


def _actual(summary: Range) -> tuple:
    s = summary
    return (s.trades, s.open, s.high, s.low, s.close, s.high_at, s.low_at, s.volume, s.vwap)


def _windows(seed: int) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    out = [(T0, T0 + SPAN), (T0 + timedelta(minutes=5), T0 + timedelta(minutes=65))]
    for _ in range(60):
        start = T0 + timedelta(milliseconds=rng.randrange(int(SPAN.total_seconds() * 1000)))
        length = timedelta(
            milliseconds=rng.choice([500, 30_000, 61_000, 119_999, 600_000, 5_400_000])
        )
        out.append((start, start + length))
    return out


def _minutes(rows: list[Row]) -> list[tuple]:
    """The whole rollup computed from the rows: every column of `trade_minutes`."""
    groups: dict[tuple[str, datetime], list[Row]] = {}
    for r in rows:
        minute = r.timestamp.replace(second=0, microsecond=0)
        groups.setdefault((r.symbol, minute), []).append(r)
    out = []
    for (symbol, minute), group in sorted(groups.items()):
        by_id = sorted(group, key=lambda r: r.trade_id)
        out.append(
            (
                symbol,
                minute,
                len(group),
                sum((r.quantity for r in group), Decimal(0)),
                sum((r.price * r.quantity for r in group), Decimal(0)),
                max(r.price for r in group),
                min(r.price for r in group),
                by_id[0].trade_id,
                by_id[-1].trade_id,
                by_id[0].price,
                by_id[-1].price,
            )
        )
    return out


def _stored_minutes(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT symbol, minute, trades, volume, notional, high, low, first_id, last_id, "
            "open, close FROM trade_minutes ORDER BY symbol, minute"
        ).fetchall()


def _check(url: str, rows: list[Row], seed: int) -> int:
    checked = 0
    with psycopg.connect(url) as conn:
        for start, end in _windows(seed):
            for symbol in SYMBOLS:
                expected = _expected(rows, symbol, start, end)
                answer = price_range(conn, start, end, [symbol]) if expected else None
                if expected is None:
                    continue
                assert _actual(answer[0]) == expected, (symbol, start, end)  # type: ignore[index]
                checked += 1
    return checked


def test_range_through_the_rollup_matches_brute_force(database_url: str) -> None:
    """COPY, re-sent rows, an UPDATE and a DELETE: every window's answer is still exact."""
    rows = _rows(seed=1)
    half = len(rows) // 2
    load(database_url, rows[:half])  # COPY
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        # The rest through INSERT ... ON CONFLICT DO NOTHING, with the first 200 rows re-sent.
        cur.executemany(
            "INSERT INTO trades (symbol, trade_id, price, quantity, timestamp, is_buyer_maker) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [astuple(r) for r in rows[:200] + rows[half:]],
        )
    assert _check(database_url, rows, seed=2) > 60
    assert _stored_minutes(database_url) == _minutes(rows)

    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE trades SET price = 1000.00 WHERE symbol = 'BUSYUSDT' AND trade_id = 3000"
        )
        conn.execute("DELETE FROM trades WHERE symbol = 'BUSYUSDT' AND trade_id % 7 = 0")
    changed = []
    for r in rows:
        if r.symbol == "BUSYUSDT" and r.trade_id % 7 == 0:
            continue
        if r.symbol == "BUSYUSDT" and r.trade_id == 3000:
            r = Row(r.symbol, r.trade_id, Decimal("1000.00"), r.quantity, r.timestamp)
        changed.append(r)
    assert _check(database_url, changed, seed=3) > 60
    assert _stored_minutes(database_url) == _minutes(changed)


def test_rollup_merges_out_of_order_inserts_exactly(database_url: str) -> None:
    """Rows of one minute arriving newest first, in several statements (a backfill landing after
    the live stream): the first/last ids, open and close still come from the right trades."""
    rows = _rows(seed=5)
    for chunk in (rows[3000:], rows[1000:3000], rows[:1000]):
        load(database_url, reversed(chunk))
    assert _stored_minutes(database_url) == _minutes(rows)


def test_migration_0005_fills_the_new_columns_of_existing_minutes(
    empty_database_url: str,
) -> None:
    """A database at 0004 with trades gains exact first/last ids, open and close."""
    from binprice.db import migrations

    migrations.upgrade(empty_database_url, "0004_trade_minutes")
    rows = _rows(seed=6)[:2000]
    load(empty_database_url, rows)
    migrations.upgrade(empty_database_url)
    assert _stored_minutes(empty_database_url) == _minutes(rows)


def test_truncate_empties_the_rollup(database_url: str) -> None:
    """TRUNCATE trades leaves no rollup rows behind to answer from."""
    load(database_url, _rows(seed=4)[:100])
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE trades")
        assert conn.execute("SELECT count(*) FROM trade_minutes").fetchone() == (0,)
