"""Fault-suite helpers: compare the database with the exchange's own record, print numbers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
import pytest

from binprice import embedded
from binprice.db.gaps import Gap, list_gaps, verify_gaps
from binprice.events import IngestEvent
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import IngestConfig, run_ingest
from binprice.ingest.recorder import Recorder
from binprice.ingest.stats import IngestSummary
from binprice.markets import Market
from binprice.testing.exchange import TestExchange
from tests.ingest_helpers import Row, as_rows, stored_rows


def assert_complete(
    name: str,
    ex: TestExchange,
    url: str,
    symbols: tuple[str, ...],
    summary: IngestSummary | None = None,
    *,
    from_first_stored: bool = True,
    market: Market = Market.SPOT,
) -> dict[str, int]:
    """Every produced id is stored exactly once; the only holes are ids the exchange never
    served, and each is recorded as a `hole` gap; `gaps --verify` agrees. Returns (and prints)
    the numbers of the run.

    `from_first_stored`: the exchange produced before the first connection and after the last
    (paced runs), so only ids between the first and last stored one are expected.
    """
    rows = stored_rows(url, market)
    expected = []
    lost: dict[str, set[int]] = {}
    produced = 0
    for symbol in symbols:
        ids = [r[1] for r in rows if r[0] == symbol]
        assert ids, f"nothing stored for {symbol}"
        never = ex.never_served(symbol)
        trades = ex.produced(symbol)
        if from_first_stored:
            trades = [t for t in trades if ids[0] <= t.trade_id <= ids[-1]]
        produced += len(trades)
        lost[symbol] = {t.trade_id for t in trades if t.trade_id in never}
        expected += [t for t in trades if t.trade_id not in never]
    assert len({(r[0], r[1]) for r in rows}) == len(rows)  # exactly once (and the key says so)
    want = as_rows(expected)
    if rows != want:
        missing, extra = sorted(set(want) - set(rows)), sorted(set(rows) - set(want))
        with psycopg.connect(url) as conn:
            recorded = list_gaps(conn, symbols, market=market)
        covering = [
            g
            for g in recorded
            for m in missing[:5]
            if g.symbol == m[0] and g.first_id <= m[1] <= g.last_id
        ]
        raise AssertionError(
            f"{len(missing)} trades missing (first ids {[m[:2] for m in missing[:5]]}), "
            f"{len(extra)} not expected (first {extra[:5]}), {len(rows)} stored of {len(want)}; "
            f"gaps covering them: {covering}"
        )
    with psycopg.connect(url) as conn:
        gaps = list_gaps(conn, symbols, market=market)
        verification = verify_gaps(conn, symbols, market=market)
    assert verification.ok, verification
    holes = {
        (g.symbol, i) for g in gaps if g.state == "hole" for i in range(g.first_id, g.last_id + 1)
    }
    assert {(s, i) for s, ids in lost.items() for i in ids} <= holes
    tails = tail_gaps(gaps, rows)
    assert not [g for g in gaps if g.state == "open" and g not in tails], gaps
    numbers = {
        "produced": produced,
        "stored": len(rows),
        "never_served": sum(len(v) for v in lost.values()),
        "duplicates_dropped": summary.duplicates if summary else -1,
        "gaps_recorded": len(gaps),
        "tail_gaps_open": len(tails),
        "gaps_filled": sum(g.state == "filled" for g in gaps),
        "holes_recorded": sum(g.state == "hole" for g in gaps),
        "backfilled": summary.backfilled if summary else -1,
        "reconnects": summary.reconnects if summary else -1,
    }
    print(f"\nFAULT {name}: " + " ".join(f"{k}={v}" for k, v in numbers.items()))
    return numbers


def tail_gaps(gaps: list[Gap], rows: list[Row]) -> list[Gap]:
    """The open gaps past each symbol's last stored id: what a stop recorded as missing up to
    the exchange's newest id (the next start fetches them)."""
    last: dict[str, int] = {}
    for symbol, tid, *_ in rows:
        last[symbol] = max(last.get(symbol, tid), tid)
    return [g for g in gaps if g.state == "open" and g.first_id > last.get(g.symbol, -1)]


async def wait_until(predicate: Callable[[], bool], seconds: float) -> None:
    """Poll `predicate` (database or exchange state, which has no event to wait on) until it
    holds; TimeoutError after `seconds`, the test's bound."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


#: Longest a run may take to reach what a test waits for, or to stop: a guard against a hang,
#: not a measured duration (each run stops as soon as its condition holds).
HANG_GUARD_SECONDS = 60


async def ingest_until(
    config: IngestConfig,
    url: str,
    done: Callable[[IngestSummary], bool],
    *,
    policy: StreamPolicy | None = None,
    on_event: Callable[[IngestEvent], None] | None = None,
) -> IngestSummary:
    """Run until `done(summary so far)` holds, then stop; the final summary. A run that ends
    first (an error) ends the wait too, with its error."""
    recorder, stop = Recorder(), asyncio.Event()
    run = asyncio.create_task(
        run_ingest(config, url, stop=stop, policy=policy, recorder=recorder, on_event=on_event)
    )
    until = asyncio.create_task(wait_until(lambda: done(recorder.summary()), HANG_GUARD_SECONDS))
    try:
        first, _ = await asyncio.wait([until, run], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        until.cancel()
    summary = await asyncio.wait_for(run, HANG_GUARD_SECONDS)
    if until in first:
        until.result()  # the guard's TimeoutError, if the condition never held
    return summary


def stored_count(url: str, symbol: str | None = None) -> int:
    with psycopg.connect(url) as conn:
        if symbol is None:
            row = conn.execute("SELECT count(*) FROM trades").fetchone()
        else:
            sql = "SELECT count(*) FROM trades WHERE symbol = %s"
            row = conn.execute(sql, (symbol,)).fetchone()
    return int(row[0]) if row else 0


needs_embedded = pytest.mark.skipif(
    bool(os.environ.get("BINPRICE_TEST_DATABASE_URL")),
    reason="stops and restarts the embedded server",
)


@asynccontextmanager
async def postgres_down(pg_data_dir: Path) -> AsyncIterator[None]:
    """The session's server crashes (`pg_ctl stop -m immediate`) and is always started again."""
    await asyncio.to_thread(embedded.stop_server, pg_data_dir, mode="immediate")
    try:
        yield
    finally:
        await asyncio.to_thread(embedded.ensure_server, pg_data_dir)


def complete_from_first(ex: TestExchange, url: str, symbols: tuple[str, ...]) -> bool:
    """Every id the exchange produced from each symbol's first stored one is stored."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, count(*), min(trade_id), max(trade_id) FROM trades GROUP BY symbol"
        ).fetchall()
    found = {s: (int(n), int(lo), int(hi)) for s, n, lo, hi in rows}
    for symbol in symbols:
        count, low, high = found.get(symbol, (0, 0, 0))
        newest = ex.produced(symbol)[-1].trade_id
        if count == 0 or high != newest or count != newest - low + 1:
            return False
    return True


class CommitReplyCutter:
    """A TCP proxy in front of PostgreSQL (over its Unix socket or TCP) that, once `arm`ed,
    lets the server commit a COPY's transaction but closes the client's connection instead of
    passing on the COMMIT's answer: a commit whose outcome the client cannot know."""

    _COMMIT_REPLY = b"C\x00\x00\x00\x0bCOMMIT\x00"

    def __init__(self, url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        self._target = conninfo_to_dict(url)
        self._url = url
        self._server: asyncio.Server | None = None
        self.armed = False
        self.cut = asyncio.Event()

    async def __aenter__(self) -> CommitReplyCutter:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        from psycopg.conninfo import make_conninfo

        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return make_conninfo(self._url, host="127.0.0.1", port=port)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host = str(self._target.get("host") or "localhost")
        port = int(self._target.get("port") or 5432)
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._open_upstream()
        copying = asyncio.Event()

        async def upstream() -> None:
            while data := await reader.read(65536):
                if b"COPY trades" in data:
                    copying.set()
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if self.armed and copying.is_set() and self._COMMIT_REPLY in data:
                    self.armed = False
                    self.cut.set()
                    return
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            up_writer.close()
