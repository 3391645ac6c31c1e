"""Full-speed rate of the test exchange as seen by one plain aiohttp client.

Run: ``python benchmarks/exchange_rate.py [TOTAL_TRADES] [--in-process]``. The exchange runs in a
child process (its own core) producing 2 symbols as fast as the client reads; the client
decodes every frame with binprice.exchange.protocol.decode_frame and discards it.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp

from binprice.exchange.protocol import WireTrade, decode_frame
from binprice.testing import TestExchange
from binprice.testing.process import ExchangeProcess

DEFAULT_TOTAL = 1_000_000
SYMBOLS = ("BTCUSDT", "ETHUSDT")
PATH = "/stream?streams=btcusdt@trade/ethusdt@trade"


async def _consume(ws_url: str, total: int) -> float:
    """Read and decode ``total`` trades; return the seconds it took."""
    last: dict[str, int] = {}
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url + PATH) as ws:
        start = time.perf_counter()
        for _ in range(total):
            msg = await ws.receive()
            trade = decode_frame(msg.data)
            if not isinstance(trade, WireTrade):
                raise RuntimeError(f"unexpected frame: {trade}")
            previous = last.get(trade.symbol)
            if previous is not None and trade.trade_id != previous + 1:
                raise RuntimeError(f"gap in {trade.symbol} after {previous}")
            last[trade.symbol] = trade.trade_id
        return time.perf_counter() - start


async def main() -> None:
    numbers = [a for a in sys.argv[1:] if not a.startswith("--")]
    total = int(numbers[0]) if numbers else DEFAULT_TOTAL
    in_process = "--in-process" in sys.argv
    if in_process:
        async with TestExchange(SYMBOLS, seed=1, rate=None) as ex:
            seconds = await _consume(ex.ws_url, total)
    else:
        async with ExchangeProcess(
            ["--seed", "1", "--rate", "max", "--symbols", ",".join(SYMBOLS)]
        ) as proc:
            seconds = await _consume(proc.ws_url, total)
    where = "in-process" if in_process else "exchange in a child process"
    print(f"{total:,} trades in {seconds:.2f} s = {total / seconds:,.0f} trades/s ({where})")


if __name__ == "__main__":
    asyncio.run(main())
