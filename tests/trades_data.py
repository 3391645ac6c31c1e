"""Trades for query tests, loaded straight into the table with COPY (no ingest involved)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from binprice.db.partitions import ensure_partitions

FIXTURES = Path(__file__).parent / "fixtures" / "binance"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    timestamp: datetime
    is_buyer_maker: bool = False


def at(seconds: float) -> datetime:
    """T0 plus some seconds: the small fixture's clock."""
    return T0 + timedelta(seconds=seconds)


# Hand-made: ties within a millisecond (2, 3), equal lows (4, 5), equal highs (2, 7), a dust
# price in TINYUSDT. Hand-computed answers are in the tests.
SMALL = [
    Row("AAAUSDT", 1, Decimal("10.00"), Decimal("1"), at(0)),
    Row("AAAUSDT", 2, Decimal("12.00"), Decimal("2"), at(1)),
    Row("AAAUSDT", 3, Decimal("11.50"), Decimal("1"), at(1)),
    Row("AAAUSDT", 4, Decimal("9.00"), Decimal("1"), at(3)),
    Row("AAAUSDT", 5, Decimal("9.00"), Decimal("3"), at(5)),
    Row("AAAUSDT", 6, Decimal("11.00"), Decimal("1"), at(7)),
    Row("AAAUSDT", 7, Decimal("12.00"), Decimal("2"), at(9)),
    Row("TINYUSDT", 100, Decimal("0.00000001"), Decimal("0.00000001"), at(2)),
]


def combined_fixture() -> list[Row]:
    """The 70 trades of trade_combined.jsonl (see the fixtures README)."""
    rows = []
    for line in (FIXTURES / "trade_combined.jsonl").read_text().splitlines():
        data = json.loads(line)["data"]
        rows.append(
            Row(
                data["s"],
                data["t"],
                Decimal(data["p"]),
                Decimal(data["q"]),
                datetime.fromtimestamp(data["T"] / 1000, UTC),
                data["m"],
            )
        )
    return rows


def load(url: str, rows: Iterable[Row], market: int | None = None) -> None:
    """COPY rows into trades (in `market`, a stored market number, when given; the column is
    left to its default, spot, otherwise, as before migration 0012 there was none)."""
    columns = "symbol, trade_id, price, quantity, timestamp, is_buyer_maker"
    extra: tuple[int, ...] = ()
    if market is not None:
        columns, extra = f"{columns}, market", (market,)
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY trades ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row((*astuple(row), *extra))


@contextmanager
def twin_databases(
    admin_url: str, start: datetime, end: datetime, rows: list[Row]
) -> Iterator[tuple[str, str]]:
    """Two databases at head with the months of ``[start, end)`` made and ``rows`` in both
    (one to stay rows, one to compress); dropped afterwards."""
    from tests.conftest import _create_database, _drop_database, _with_database

    names = [_create_database(admin_url, "binprice_test_template") for _ in range(2)]
    urls = [_with_database(admin_url, name) for name in names]
    try:
        for url in urls:
            with psycopg.connect(url, autocommit=True) as conn:
                ensure_partitions(conn, start, end)
            load(url, rows)
        yield urls[0], urls[1]
    finally:
        for name in names:
            _drop_database(admin_url, name)
