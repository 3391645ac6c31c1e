"""`ingest --all`: every TRADING symbol, spread over connections and SUBSCRIBE batches, kept
current as the exchange lists and delists symbols while the run goes on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from binprice.errors import ConfigError
from binprice.events import EventKind
from binprice.exchange.subscriptions import URL_STREAMS_MAX
from binprice.ingest import IngestConfig, run_ingest
from binprice.ingest.recorder import Recorder
from binprice.testing import market
from binprice.testing.exchange import TestExchange
from tests.fault_helpers import assert_complete, complete_from_first, wait_until
from tests.ingest_helpers import Events, stored_rows

BUDGET_SECONDS = 60


def _all_config(ex: TestExchange, tmp_path: Path, **kw: object) -> IngestConfig:
    return IngestConfig(
        symbols=(),
        all_symbols=True,
        ws_url=ex.ws_url,
        rest_url=ex.rest_url,
        spool_dir=tmp_path / "spool",
        **kw,  # type: ignore[arg-type]
    )


async def test_all_carries_every_trading_symbol_past_the_url_limit_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    """500 real symbol names, some not TRADING: two connections of at most 300 streams, the
    first 200 of each in the URL and the rest subscribed in batches, paced under the
    exchange's 5 messages a second (it closes a connection that sends more: no reconnect
    happens); the symbols that are not TRADING are never subscribed; every trade of the
    others is stored exactly once."""
    names = market.symbols(500)
    statuses = market.statuses(names, not_trading=0.1, seed=3)
    trading = [s for s in names if s not in statuses]
    assert len(trading) > 2 * URL_STREAMS_MAX and statuses
    stats = Recorder()
    stop = asyncio.Event()
    events = Events()
    async with TestExchange(names, seed=61, rate=5, max_trades=4, statuses=statuses) as ex:
        ex.paused.update(names)  # nothing trades until everything is subscribed
        config = _all_config(ex, tmp_path, streams_per_connection=300)
        run = asyncio.create_task(
            run_ingest(config, database_url, stop=stop, recorder=stats, on_event=events)
        )
        async with asyncio.timeout(BUDGET_SECONDS):
            await ex.wait_subscribed(lambda subscribed: subscribed >= set(trading))
        subscriptions = [set(c.subscriptions) for c in ex.connections]
        ex.paused.clear()
        await wait_until(lambda: stats.summary().stored == 4 * len(trading), BUDGET_SECONDS)
        stop.set()
        summary = await asyncio.wait_for(run, BUDGET_SECONDS)
    assert ex.subscribed_symbols() == set()  # every connection closed at the stop
    assert sorted(len(s) for s in subscriptions) == [len(trading) - 300, 300]
    assert set().union(*subscriptions) == {f"{s.lower()}@trade" for s in trading}
    assert summary.reconnects == 0  # no connection was closed for sending too fast
    assert_complete("all-500", ex, database_url, tuple(trading), summary, from_first_stored=False)
    assert not {r[0] for r in stored_rows(database_url)} & set(statuses)
    (listing,) = events.of(EventKind.LISTING)
    assert f": {len(trading)} symbols (" in listing and "and " in listing


async def test_a_listing_that_changes_mid_run_adds_and_drops_symbols(
    database_url: str, tmp_path: Path
) -> None:
    """The exchange halts one symbol and lists another while the run goes on: each change is
    one event line; the halted one is unsubscribed with every trade it made stored; the new
    one resumes after the trades an earlier run stored, the ones it made before its stream
    was subscribed fetched from REST, and `gaps --verify` agrees."""
    names = market.symbols(30)
    halted, listed = names[3], names[-1]
    stats = Recorder()
    stop = asyncio.Event()
    events = Events()
    async with TestExchange(names, seed=62, rate=20, statuses={listed: "BREAK"}) as ex:
        earlier = ex.generators[listed]
        earlier.produce(5, _now_us())  # an earlier run stored these
        _store(database_url, ex, listed, 5)
        config = _all_config(ex, tmp_path, listing_interval=0.2)
        run = asyncio.create_task(
            run_ingest(config, database_url, stop=stop, recorder=stats, on_event=events)
        )
        async with asyncio.timeout(BUDGET_SECONDS):
            await ex.wait_subscribed(lambda subscribed: halted in subscribed)
            await ex.wait_produced(halted, 20)
            ex.statuses[halted] = "HALT"
            ex.statuses[listed] = "TRADING"
            await events.wait_for(EventKind.LISTING, f"dropped: {halted}")
            await events.wait_for(EventKind.LISTING, f"added: {listed}")
            await ex.wait_subscribed(lambda s: listed in s and halted not in s)
            await ex.wait_produced(listed, 5 + 40)
        ex.paused.update(names)
        await wait_until(
            lambda: complete_from_first(ex, database_url, tuple(names)), BUDGET_SECONDS
        )
        stop.set()
        summary = await asyncio.wait_for(run, BUDGET_SECONDS)
        numbers = assert_complete("listing-change", ex, database_url, tuple(names), summary)
    listed_ids = [r[1] for r in stored_rows(database_url) if r[0] == listed]
    assert listed_ids[0] == ex.produced(listed)[0].trade_id  # from the earlier run's first
    assert summary.backfilled >= 1  # what it made before its stream was subscribed
    changes = events.of(EventKind.LISTING)[1:]
    assert changes == [f"no longer TRADING, dropped: {halted}", f"newly TRADING, added: {listed}"]
    assert numbers["gaps_filled"] >= 1


async def test_an_all_run_resumes_every_symbol_where_it_left_off(
    database_url: str, tmp_path: Path
) -> None:
    """A second `--all` run after downtime: each symbol's missed trades are fetched from REST
    (revealed by its first frame or by the reconciler), within the weight budget:
    the exchange never answers 429."""
    names = market.symbols(60)
    async with TestExchange(names, seed=63, rate=4) as ex:
        for attempt in range(2):
            stats = Recorder()
            stop = asyncio.Event()
            run = asyncio.create_task(
                run_ingest(_all_config(ex, tmp_path), database_url, stop=stop, recorder=stats)
            )
            await wait_until(lambda s=stats: s.summary().stored >= 3 * len(names), BUDGET_SECONDS)
            if attempt == 1:
                ex.paused.update(names)
                await wait_until(
                    lambda: complete_from_first(ex, database_url, tuple(names)), BUDGET_SECONDS
                )
            stop.set()
            summary = await asyncio.wait_for(run, BUDGET_SECONDS)
            if attempt == 0:  # downtime: every symbol trades while nobody listens
                targets = {s: ex.produced_count(s) + 2 for s in names}
                async with asyncio.timeout(BUDGET_SECONDS):
                    for symbol, count in targets.items():
                        await ex.wait_produced(symbol, count)
        numbers = assert_complete("all-resume", ex, database_url, tuple(names), summary)
    assert summary.rate_limited == 0
    assert summary.backfilled >= 2 * len(names)
    assert numbers["gaps_filled"] >= len(names)


def test_all_takes_no_symbols_and_quote_needs_all() -> None:
    with pytest.raises(ConfigError, match="--quote only applies with --all"):
        IngestConfig(quotes=("USDT",))
    with pytest.raises(ConfigError, match="--since cannot be combined with --all"):
        IngestConfig(symbols=(), all_symbols=True, since=datetime.now(UTC).date())


async def test_all_with_quote_carries_only_those_pairs(database_url: str, tmp_path: Path) -> None:
    names = ["BTCUSDT", "ETHUSDT", "ETHBTC", "BNBBTC", "SOLFDUSD"]
    stats = Recorder()
    stop = asyncio.Event()
    async with TestExchange(names, seed=64, rate=10) as ex:
        config = _all_config(ex, tmp_path, quotes=("BTC", "FDUSD"))
        run = asyncio.create_task(run_ingest(config, database_url, stop=stop, recorder=stats))
        async with asyncio.timeout(BUDGET_SECONDS):
            await ex.wait_subscribed(lambda s: bool(s))
        carried = ex.subscribed_symbols()
        await wait_until(lambda: stats.summary().stored >= 6, BUDGET_SECONDS)
        stop.set()
        await asyncio.wait_for(run, BUDGET_SECONDS)
    assert carried == {"ETHBTC", "BNBBTC", "SOLFDUSD"}
    assert {r[0] for r in stored_rows(database_url)} <= carried


def _now_us() -> int:
    from binprice.testing.generator import wall_clock_us

    return wall_clock_us() - 60_000_000  # a minute ago


def _store(url: str, ex: TestExchange, symbol: str, count: int) -> None:
    trades = ex.produced(symbol)[:count]
    with psycopg.connect(url) as conn:
        conn.cursor().executemany(
            "INSERT INTO trades (symbol, trade_id, price, quantity, timestamp, is_buyer_maker) "
            "VALUES (%s, %s, %s, %s, to_timestamp(%s / 1000.0), %s)",
            [
                (t.symbol, t.trade_id, t.price, t.quantity, t.time_ms, t.is_buyer_maker)
                for t in trades
            ],
        )


def test_the_breadth_benchmark_runs_short_and_stores_every_trade_once(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """benchmarks/breadth.py, the 30-minute benchmark, for 12 s on 200 symbols with 20x
    bursts: the real CLI with --all and --metrics-port, every produced trade stored once."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "breadth.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--symbols",
            "200",
            "--minutes",
            "0.2",
            "--rate",
            "200",
            "--burst-every",
            "4",
            "--burst-seconds",
            "1",
            "--database-url",
            database_url,
        ],
        capture_output=True,
        text=True,
        env=clean_env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = done.stdout
    trading = 200 - len(market.statuses(market.symbols(200), not_trading=0.05, seed=1))
    assert f"carried {trading} symbols on 1 connections" in report
    assert ": exactly once" in report, report
    assert "bursts of 20x" in report and "/metrics: " in report
