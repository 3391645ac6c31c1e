"""Helpers for ingest tests: read back what the database holds, compare with the exchange."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from binprice.events import EventKind, IngestEvent
from binprice.exchange.protocol import WireTrade
from binprice.ingest import IngestConfig
from binprice.markets import Market
from binprice.testing.exchange import TestExchange

Row = tuple[str, int, Decimal, Decimal, int, bool]

#: The real CLI, as a user runs it.
BINPRICE = (sys.executable, "-m", "binprice")


async def spawn_ingest(
    url: str,
    *args: str,
    ws_url: str,
    rest_url: str,
    env: dict[str, str],
    stdout: int = asyncio.subprocess.PIPE,
) -> asyncio.subprocess.Process:
    """`binprice ingest ARGS` against the exchange at `ws_url`/`rest_url`, in a subprocess."""
    return await asyncio.create_subprocess_exec(
        *BINPRICE,
        *("--database-url", url, "ingest", "--ws-url", ws_url, "--rest-url", rest_url),
        *args,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def spawn_logged_ingest(
    ex: TestExchange, url: str, env: dict[str, str], *symbols: str
) -> asyncio.subprocess.Process:
    """`binprice ingest SYMBOLS` against `ex`, its JSON log on stderr, its stdout discarded."""
    return await spawn_ingest(
        url,
        *symbols,
        *("--log-format", "json"),
        ws_url=ex.ws_url,
        rest_url=ex.rest_url,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )


def stored_rows(url: str, market: Market = Market.SPOT) -> list[Row]:
    """Every stored trade of `market` as (symbol, id, price, qty, time_ms, is_buyer_maker),
    sorted."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, trade_id, price, quantity, timestamp, is_buyer_maker "
            "FROM trades WHERE market = %s ORDER BY symbol, trade_id",
            (market.number,),
        ).fetchall()
    return [
        (s, i, p, q, int(ts.astimezone(UTC).timestamp() * 1000 + 0.5), m)
        for s, i, p, q, ts, m in rows
    ]


def as_rows(trades: list[WireTrade]) -> list[Row]:
    return sorted(
        (t.symbol, t.trade_id, t.price, t.quantity, t.time_ms, t.is_buyer_maker) for t in trades
    )


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def exchange_config(
    ex: TestExchange, tmp_path: Path, symbols: tuple[str, ...], **kw: Any
) -> IngestConfig:
    """An IngestConfig pointed at the test exchange, spooling under `tmp_path`."""
    return IngestConfig(
        symbols=symbols, ws_url=ex.ws_url, rest_url=ex.rest_url, spool_dir=tmp_path / "spool", **kw
    )


class Events:
    """A run's events (its `on_event`, or `emit` where an `Emit` is taken), and a wake-up for
    each one, so a test waits for the event rather than for time."""

    def __init__(self) -> None:
        self.seen: list[IngestEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: IngestEvent) -> None:
        self.seen.append(event)
        self._changed.set()

    def emit(self, kind: EventKind, message: str) -> None:
        self(IngestEvent(0.0, kind, message))

    def of(self, kind: EventKind) -> list[str]:
        return [e.message for e in self.seen if e.kind is kind]

    async def wait_for(self, kind: EventKind, text: str = "", *, count: int = 1) -> None:
        """Until `count` events of `kind` whose message holds `text` were seen."""
        while True:
            self._changed.clear()
            if sum(text in message for message in self.of(kind)) >= count:
                return
            await self._changed.wait()


async def binprice_async(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the event loop the test exchange runs on: exit code,
    stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "binprice",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
