"""Candles from the rollup equal a brute-force SQL over raw trades, for every interval.

The brute force groups raw trades with its own bucketing (epoch arithmetic for fixed widths,
``date_trunc('week'|'month')`` in UTC for weeks and months) and picks open/close by trade id,
sharing nothing with the rollup query. Windows are random (millisecond ends, so partial minutes
at both ends) plus aligned ones across month and week boundaries; the data has quiet stretches,
so some intervals are empty and must yield no candle.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from binprice.db.candles import INTERVALS, Candle, candles, missing_symbols
from binprice.db.queries import VWAP_CONTEXT
from binprice.errors import UsageError
from tests.trades_data import Row, load

# Thursday 2026-01-22 to Tuesday 2026-03-10: three month boundaries' worth of weeks.
START = datetime(2026, 1, 22, tzinfo=UTC)
SPAN = timedelta(days=47)
BOUNDARIES = [
    datetime(2026, 2, 1, tzinfo=UTC),
    datetime(2026, 3, 1, tzinfo=UTC),
    datetime(2026, 2, 2, tzinfo=UTC),
    datetime(2026, 2, 9, tzinfo=UTC),
]
SYMBOLS = ("BUSYUSDT", "RAREUSDT")

BRUTE_SQL = """
SELECT {bucket} AS bucket, count(*), sum(quantity), sum(price * quantity), max(price),
       min(price), (array_agg(price ORDER BY trade_id))[1],
       (array_agg(price ORDER BY trade_id DESC))[1]
FROM trades
WHERE symbol = %(symbol)s AND timestamp >= %(start)s AND timestamp < %(end)s
GROUP BY 1 ORDER BY 1
"""
_EPOCH_BUCKET = "to_timestamp(floor(extract(epoch FROM timestamp) / {seconds}) * {seconds})"
_CALENDAR_BUCKET = "date_trunc('{unit}', timestamp AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


def _bucket(name: str) -> str:
    if name == "1w":
        return _CALENDAR_BUCKET.format(unit="week")  # ISO weeks: Monday
    if name == "1M":
        return _CALENDAR_BUCKET.format(unit="month")
    width = INTERVALS[name].width
    assert width is not None
    return _EPOCH_BUCKET.format(seconds=int(width.total_seconds()))


def _rows(seed: int) -> list[Row]:
    rng = random.Random(seed)
    span_ms = int(SPAN.total_seconds() * 1000)
    times = [rng.randrange(span_ms) for _ in range(4000)]
    for boundary in BOUNDARIES:  # dense around the boundaries, down to the millisecond
        offset = int((boundary - START).total_seconds() * 1000)
        times += [offset + rng.randrange(-90_000, 90_000) for _ in range(300)]
        times += [offset - 1, offset, offset + 1]
    times = [t for t in times if not 86_400_000 * 10 < t < 86_400_000 * 13]  # three quiet days
    rows = []
    for symbol, share in (("BUSYUSDT", 1.0), ("RAREUSDT", 0.01)):
        chosen = sorted(t for t in times if rng.random() < share)
        for i, ms in enumerate(chosen):
            price = Decimal(rng.randrange(9_000, 11_000)) / Decimal(100)
            quantity = Decimal(rng.randrange(1, 100_000)) / Decimal(10_000)
            rows.append(Row(symbol, 500 + i, price, quantity, START + timedelta(milliseconds=ms)))
    return rows


def _windows(seed: int) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    out = [(START, START + SPAN), (BOUNDARIES[0] - timedelta(days=1), BOUNDARIES[1])]
    for boundary in BOUNDARIES:
        out.append(
            (boundary - timedelta(minutes=7, milliseconds=1), boundary + timedelta(seconds=61.5))
        )
    for _ in range(10):
        start = START + timedelta(milliseconds=rng.randrange(int(SPAN.total_seconds() * 1000)))
        length = rng.choice(
            [
                timedelta(seconds=50),
                timedelta(minutes=37),
                timedelta(hours=9),
                timedelta(days=4),
                timedelta(days=20),
            ]
        )
        out.append((start, start + length + timedelta(milliseconds=rng.randrange(60_000))))
    return out


def _brute(
    conn: psycopg.Connection[Any], name: str, symbol: str, start: datetime, end: datetime
) -> list[tuple[Any, ...]]:
    sql = BRUTE_SQL.format(bucket=_bucket(name))
    rows = conn.execute(sql, {"symbol": symbol, "start": start, "end": end}).fetchall()
    interval = INTERVALS[name]
    return [
        (
            symbol,
            b.astimezone(UTC),
            interval.close_time(b.astimezone(UTC)),
            o,
            hi,
            lo,
            c,
            v,
            q,
            n,
            VWAP_CONTEXT.divide(q, v),
        )
        for b, n, v, q, hi, lo, o, c in rows
    ]


def _as_tuple(candle: Candle) -> tuple[Any, ...]:
    c = candle
    return (
        c.symbol,
        c.open_time,
        c.close_time,
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
        c.quote_volume,
        c.trades,
        c.vwap,
    )


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return _rows(seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(INTERVALS))
def test_candles_match_brute_force_over_random_windows(
    database_url: str, rows: list[Row], name: str
) -> None:
    """Every interval, random and boundary windows: exactly the brute-force candles."""
    load(database_url, rows)
    checked = 0
    with psycopg.connect(database_url) as conn:
        for start, end in _windows(seed=12):
            got = candles(conn, SYMBOLS, name, start, end)
            expected = [row for s in SYMBOLS for row in _brute(conn, name, s, start, end)]
            assert [_as_tuple(c) for c in got] == expected, (name, start, end)
            checked += len(expected)
    assert checked > 0


def test_quiet_intervals_have_no_candle(database_url: str, rows: list[Row]) -> None:
    """Hours without trades are skipped, not zero-filled; a quiet window is an empty list."""
    load(database_url, rows)
    quiet = START + timedelta(days=11)
    with psycopg.connect(database_url) as conn:
        assert candles(conn, SYMBOLS, "1h", quiet, quiet + timedelta(days=1)) == []
        around = candles(
            conn, ["BUSYUSDT"], "1d", quiet - timedelta(days=2), quiet + timedelta(days=3)
        )
    # 1 February keeps only its trade at 00:00:00.000; the 2nd and 3rd are quiet; the 5th is
    # the (exclusive) end.
    assert [c.open_time.day for c in around] == [31, 1, 4]
    assert [c.open_time.month for c in around] == [1, 2, 2]


def test_month_and_week_candles_split_at_the_boundary(database_url: str) -> None:
    """A trade at the last millisecond of January and one at 1 February 00:00 fall apart."""
    feb = BOUNDARIES[0]
    load(
        database_url,
        [
            Row("AAAUSDT", 1, Decimal("1.5"), Decimal("2"), feb - timedelta(milliseconds=1)),
            Row("AAAUSDT", 2, Decimal("2.5"), Decimal("4"), feb),
            Row("AAAUSDT", 3, Decimal("3.5"), Decimal("1"), feb + timedelta(days=1)),  # Monday
        ],
    )
    with psycopg.connect(database_url) as conn:
        months = candles(conn, ["aaausdt"], "1M", START, START + SPAN)
        weeks = candles(conn, ["AAAUSDT"], "1w", START, START + SPAN)
    assert [(c.open_time, c.trades, c.open, c.close) for c in months] == [
        (datetime(2026, 1, 1, tzinfo=UTC), 1, Decimal("1.5"), Decimal("1.5")),
        (datetime(2026, 2, 1, tzinfo=UTC), 2, Decimal("2.5"), Decimal("3.5")),
    ]
    assert months[0].close_time == feb - timedelta(milliseconds=1)
    assert [(c.open_time, c.trades) for c in weeks] == [
        (datetime(2026, 1, 26, tzinfo=UTC), 2),
        (datetime(2026, 2, 2, tzinfo=UTC), 1),
    ]
    assert months[1].volume == Decimal("5") and months[1].quote_volume == Decimal("13.5")
    assert months[1].vwap == Decimal("2.7")


def test_symbols_without_candles_are_reported_missing(database_url: str, rows: list[Row]) -> None:
    """A symbol with no trades has no candles; missing_symbols names it."""
    load(database_url, rows)
    with psycopg.connect(database_url) as conn:
        got = candles(conn, ["nopeusdt", "BUSYUSDT"], "1d", START, START + SPAN)
    assert {c.symbol for c in got} == {"BUSYUSDT"}
    assert missing_symbols(["nopeusdt", "BUSYUSDT"], got) == ["NOPEUSDT"]


def test_empty_window_is_a_usage_error(database_url: str) -> None:
    """start >= end is refused, as range does."""
    with psycopg.connect(database_url) as conn, pytest.raises(UsageError, match="empty window"):
        candles(conn, ["BUSYUSDT"], "1m", START, START)
