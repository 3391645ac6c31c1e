"""The live month's days still rows are read through the primary key once some of its days
are blocks (#18 item 4): whatever ANALYZE says of the row partition after its early days were
deleted and vacuumed and new rows took their space, `at` and `range` read a minute's trades as
an id range of the key, never by walking the seed index (timestamp DESC, symbol) down from the
minute over the month's other trades."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from binprice.db.blockreads import WINDOWS_ROWS_SQL
from binprice.db.compress_days import compress_days
from binprice.db.partitions import ensure_partitions
from binprice.db.queries import AT_SQL, RANGE_SQL
from tests.test_query_plans import KEY, trades_nodes

APRIL = datetime(2026, 4, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NEVER = datetime.min.replace(tzinfo=UTC)
#: Trades a day: BTCUSDT four to a second, a rarer ETHUSDT every minute, written as a live
#: writer does, in batches of both symbols in time order (so the primary key's pages of the
#: busy symbol split in the middle and stay half full, and the seed index folds the trades
#: sharing a timestamp).
PER_DAY = 86_400
BATCH = 2_400
FILL_SQL = """
INSERT INTO trades (symbol, trade_id, price, quantity, "timestamp", is_buyer_maker)
SELECT 'BTCUSDT', i, 70000 + (i %% 1000) / 100.0, 0.001 * (1 + i %% 7),
       %(april)s::timestamptz + (i / 4) * interval '4 seconds', i %% 2 = 0
FROM generate_series(%(first)s::int8, %(first)s::int8 + %(batch)s::int8 - 1) AS i
UNION ALL
SELECT 'ETHUSDT', i, 3500 + (i %% 100) / 10.0, 0.01,
       %(april)s::timestamptz + i * interval '1 minute', false
FROM generate_series(%(first)s::int8 / 240, (%(first)s::int8 + %(batch)s::int8) / 240 - 1) AS i
"""


def _fill(conn: psycopg.Connection[Any], first_day: int, days: int) -> None:
    """Days `first_day` to `first_day + days - 1` of April, one committed batch at a time."""
    for first in range(first_day * PER_DAY, (first_day + days) * PER_DAY, BATCH):
        conn.execute(FILL_SQL, {"april": APRIL, "first": first, "batch": BATCH})


@pytest.fixture
def live(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """April as a live month on its 8th day: days 1-5 compressed (their rows deleted, the
    partition vacuumed), days 6-8 written afterwards into the freed space, then analysed."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_partitions(conn, APRIL, APRIL + 31 * DAY)
        _fill(conn, 0, 5)
        done = compress_days(conn, APRIL + 5 * DAY, months_before=NEVER)
        assert [d.day for d in done] == [APRIL + i * DAY for i in range(5)]
        _fill(conn, 5, 3)
        conn.execute("ANALYZE trades_2026_04")
        yield conn


NOON = APRIL + 6 * DAY + timedelta(hours=12, seconds=7)
CASES = {
    "at": (AT_SQL, {"ts": NOON, "before": False}),
    "at --before": (AT_SQL, {"ts": NOON, "before": True}),
    "range 1m": (RANGE_SQL, {"start": NOON, "end": NOON + timedelta(seconds=50)}),
    "range 1h": (RANGE_SQL, {"start": NOON, "end": NOON + timedelta(hours=1, seconds=3)}),
    # the end minutes of `range` and `candles` over a month with blocks (db/blockreads.py)
    "window rows": (WINDOWS_ROWS_SQL, {"starts": [NOON], "ends": [NOON + timedelta(seconds=50)]}),
}


def test_the_days_still_rows_are_read_through_the_primary_key(
    live: psycopg.Connection[Any],
) -> None:
    failures = []
    for case, (sql, params) in CASES.items():
        for symbol in ("BTCUSDT", "ETHUSDT"):
            nodes = trades_nodes(live, sql, {**params, "symbols": [symbol], "market": 0})
            if not nodes or any(not (n.startswith("Index") and i == KEY) for n, i in nodes):
                failures.append(f"{case} / {symbol}: {nodes}")
    assert not failures, "\n".join(failures)
