"""What every interop test checks: a client's trades are the test exchange's record."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from binprice.testing import TestExchange

SYMBOLS = ("BTCUSDT", "ETHUSDT")
#: Trades per symbol a client must receive on a stream: several ticks' worth, in about a second.
STREAM_TRADES = 150
RATE = 200
#: Safety net only: at RATE the trades arrive in well under a second.
TIMEOUT_SECONDS = 20
#: A trade as a client reports it: id, price, quantity, trade time in ms, buyer is maker.
Row = tuple[int, str | Decimal | float, str | Decimal | float, int, bool]
#: An aggregate as a client reports it: a, p, q, f, l, T, m.
AggRow = tuple[int, str | Decimal | float, str | Decimal | float, int, int, int, bool]


def _decimal(value: str | Decimal | float) -> Decimal:
    # ccxt hands out floats; a recorded price has 8 decimals, so rounding there is exact.
    return round(Decimal(value), 8) if isinstance(value, float) else Decimal(value)


def assert_trades_are_the_record(ex: TestExchange, symbol: str, rows: Sequence[Row]) -> None:
    """``rows`` are consecutive ids and equal, field by field, the trades the exchange made."""
    assert rows, f"no {symbol} trades"
    ids = [row[0] for row in rows]
    assert ids == list(range(ids[0], ids[0] + len(ids))), f"{symbol} ids not contiguous"
    record = {t.trade_id: t for t in ex.produced(symbol)}
    assert [(i, _decimal(p), _decimal(q), time, m) for i, p, q, time, m in rows] == [
        (t.trade_id, t.price, t.quantity, t.time_ms, t.is_buyer_maker)
        for t in (record[i] for i in ids)
    ]


def assert_aggregates_tile_the_record(
    ex: TestExchange, symbol: str, rows: Sequence[AggRow]
) -> None:
    """Consecutive aggregate ids whose f..l ranges tile the record's ids, quantities summed."""
    assert rows, f"no {symbol} aggregates"
    assert [r[0] for r in rows] == list(range(rows[0][0], rows[0][0] + len(rows)))
    assert [r[3] for r in rows[1:]] == [r[4] + 1 for r in rows[:-1]]
    record = {t.trade_id: t for t in ex.produced(symbol)}
    for _, price, quantity, first, last, time, maker in rows:
        trades = [record[i] for i in range(first, last + 1)]
        assert {(t.price, t.time_ms, t.is_buyer_maker) for t in trades} == {
            (_decimal(price), time, maker)
        }
        assert sum(t.quantity for t in trades) == _decimal(quantity)


def deadline() -> asyncio.Timeout:
    """A safety net around a client's receive loop; never expected to fire."""
    return asyncio.timeout(TIMEOUT_SECONDS)


class Collector:
    """Rows a client hands over per stream; ``wait`` returns once every stream has enough."""

    def __init__(self, streams: Sequence[str], wanted: int = STREAM_TRADES) -> None:
        self.rows: dict[str, list[Any]] = {s: [] for s in streams}
        self._wanted = wanted
        self._done = asyncio.Event()

    def add(self, stream: str, row: Any) -> None:
        self.rows[stream].append(row)
        if all(len(rows) >= self._wanted for rows in self.rows.values()):
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> None:
        async with deadline():
            await self._done.wait()
