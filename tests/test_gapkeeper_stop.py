"""The gap keeper at stop: what the stream showed is fetched before the run ends, whatever the
grace; a fetch cut short is queued again; gaps found after that say they are left for the next
run. No database and no network: the buffer and the REST side are stand-ins (the boundary)."""

from __future__ import annotations

import asyncio

import pytest

from binprice.completeness.gapkeeper import GapKeeper
from binprice.events import EventKind
from binprice.exchange.protocol import WireTrade
from binprice.exchange.rest import RestClient
from binprice.ingest.recorder import Recorder
from tests.test_faults_property import SYMBOL, _Buffer, _trade


class _Exchange:
    """historicalTrades of an exchange that has every id; `hold` makes a call wait."""

    rate_limited = 0

    def __init__(self) -> None:
        self.hold: asyncio.Event | None = None
        self.called = asyncio.Event()

    async def historical_trades(self, symbol: str, from_id: int, attempts: int) -> list[WireTrade]:
        self.called.set()
        if self.hold is not None:
            await self.hold.wait()
        return [_trade(i) for i in range(from_id, from_id + 1000)]


def _keeper(buffer: _Buffer, events: list[tuple[EventKind, str]]) -> GapKeeper:
    # A minute of grace: the running backfill would not touch these gaps yet.
    recorder = Recorder(lambda e: events.append((e.kind, e.message)))
    return GapKeeper(
        "unused",
        buffer,
        recorder,  # type: ignore[arg-type]
        backfill_max=None,
        grace=60.0,
        clock=lambda: 0.0,
    )


async def test_drain_fetches_every_queued_gap_whatever_its_grace() -> None:
    buffer, events = _Buffer(), []
    keeper = _keeper(buffer, events)
    keeper.open(SYMBOL, 100, 101)
    keeper.open(SYMBOL, 5000, 5000)
    await keeper.drain(_Exchange())  # type: ignore[arg-type]
    assert sorted(t.trade_id for t in buffer.items) == [100, 101, 5000]
    assert keeper.missing(SYMBOL) == 0
    assert all(m.endswith("fetching them") for k, m in events if k is EventKind.GAP)


async def test_a_fetch_cancelled_mid_gap_is_queued_again_for_the_drain() -> None:
    buffer, events = _Buffer(), []
    keeper = _keeper(buffer, events)
    keeper.open(SYMBOL, 100, 100)
    exchange = _Exchange()
    exchange.hold = asyncio.Event()
    rest: RestClient = exchange  # type: ignore[assignment]
    fetching = asyncio.create_task(keeper.fetch_next(rest))
    await exchange.called.wait()
    fetching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fetching
    assert buffer.items == []
    exchange.hold = None
    await keeper.drain(rest)
    assert [t.trade_id for t in buffer.items] == [100]


async def test_gaps_found_after_the_last_fetches_say_the_next_run_fetches_them() -> None:
    buffer, events = _Buffer(), []
    keeper = _keeper(buffer, events)
    keeper.stop_fetching()
    keeper.open(SYMBOL, 7, 9, why=" (the exchange is ahead of the stream at stop)")
    (message,) = [m for k, m in events if k is EventKind.GAP]
    assert message == (
        "BTCUSDT: trades 7..9 (3) missing (the exchange is ahead of the stream at stop); "
        "recorded; the next run fetches them"
    )
