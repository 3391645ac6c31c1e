"""`binprice ingest --market usdm|coinm` against the test exchange's futures markets and real
PostgreSQL (#19): every market trade stored once through drops and withheld frames, the ids of
non-market trades accounted for without a gap, backfill with and without an API key, a spot
and a USD-M series of BTCUSDT side by side, and the key in no output."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

import binprice
from binprice.db.gaps import list_gaps
from binprice.events import EventKind, IngestEvent
from binprice.exchange.backoff import no_wait
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import IngestConfig, Recorder, run_ingest
from binprice.ingest.stats import IngestSummary
from binprice.markets import Market
from binprice.testing import Faults, TestExchange
from tests.fault_helpers import assert_complete, wait_until
from tests.ingest_helpers import binprice_async, exchange_config, ms_to_datetime, stored_rows

KEY = "k3yWithLettersAndDigits0123456789"
#: Each market's symbols: a perpetual and (USD-M) a quarterly contract.
SYMBOLS = {Market.USDM: ("BTCUSDT", "BTCUSDT_250328"), Market.COINM: ("BTCUSD_PERP",)}
RATE = 1000
#: A guard against a hang, not a measured duration: each run stops once its condition holds.
UNTIL_GUARD_SECONDS = 60


async def _run_until(
    config: IngestConfig,
    url: str,
    done: Callable[[IngestSummary], bool],
    *,
    fault: tuple[TestExchange, str, int, Callable[[], None]] | None = None,
) -> tuple[IngestSummary, list[IngestEvent]]:
    """Run until `done(summary so far)` holds, then stop; with `fault=(ex, symbol, after,
    call)`, `call()` once `after` more trades of `symbol` were produced."""
    events: list[IngestEvent] = []
    recorder, stop = Recorder(), asyncio.Event()
    run = asyncio.create_task(
        run_ingest(
            config,
            url,
            stop=stop,
            policy=StreamPolicy(backoff=no_wait),
            recorder=recorder,
            on_event=events.append,
        )
    )
    try:
        if fault is not None:
            ex, symbol, after, call = fault
            await asyncio.wait_for(
                ex.wait_produced(symbol, ex.produced_count(symbol) + after), UNTIL_GUARD_SECONDS
            )
            call()
        await wait_until(lambda: done(recorder.summary()), UNTIL_GUARD_SECONDS)
    finally:
        stop.set()
    return await asyncio.wait_for(run, UNTIL_GUARD_SECONDS), events


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM], ids=["usdm", "coinm"])
async def test_futures_trades_exactly_once_through_drops_withheld_and_non_market_trades(
    market: Market, database_url: str, tmp_path: Path
) -> None:
    """Connections cut every 300 frames, 1 % of trades withheld from the stream (REST has
    them), then 5 liquidations taken over by the insurance fund (on the stream only): every
    market trade stored once with its exact fields, the withheld ones backfilled with the
    key, the non-market ids recorded as holes (no gap fetched for them), `gaps --verify`
    agrees; nothing lands in spot."""
    symbols = SYMBOLS[market]
    faults = Faults(close_after_frames=300, skip_fraction=0.01)
    async with TestExchange(symbols, seed=31, rate=RATE, faults=faults, market=market) as ex:

        def liquidate() -> None:
            faults.non_market_next = 5
            faults.non_market_kind = "INSURANCE_FUND"

        config = exchange_config(ex, tmp_path, symbols, market=market, api_key=KEY)
        summary, events = await _run_until(
            config,
            database_url,
            lambda s: s.reconnects >= 5 and s.backfilled > 0 and s.stored > 3000,
            fault=(ex, symbols[0], 500, liquidate),
        )
        numbers = assert_complete(
            f"{market.value}-drops", ex, database_url, symbols, summary, market=market
        )
    assert numbers["never_served"] == 5  # the insurance-fund trades: holes, not gaps
    taken = {
        (s, ex.generators[s].first_id + i) for s in symbols for i in ex.generators[s].non_market
    }
    assert len(taken) == 5
    opened = [
        (e.message.split(":")[0], *_ids(e.message.split("trades ")[1].split(" ")[0]))
        for e in events
        if e.kind in (EventKind.GAP, EventKind.RECONCILED)
    ]
    assert not [g for g in opened for s, i in taken if g[0] == s and g[1] <= i <= g[2]]
    assert summary.backfilled > 0 and summary.reconnects >= 5
    assert stored_rows(database_url, Market.SPOT) == []


async def test_usdm_without_a_key_fills_recent_gaps_from_trades_and_skips_older_ones(
    database_url: str, tmp_path: Path
) -> None:
    """No API key: a gap inside the newest trades is filled from `trades` (no key needed);
    the ids before a run's start that only `historicalTrades` holds are recorded as skipped
    with the reason, and the run goes on (no error, no retry loop)."""
    symbols = ("BTCUSDT",)
    faults = Faults(skip_fraction=0.01)
    async with TestExchange(symbols, seed=32, rate=100, faults=faults, market=Market.USDM) as ex:
        config = exchange_config(ex, tmp_path, symbols, market=Market.USDM)
        first, _ = await _run_until(
            config, database_url, lambda s: s.backfilled > 0 and s.stored > 300
        )
        assert_complete("usdm-keyless", ex, database_url, symbols, first, market=Market.USDM)
        # Trades stored before the next run: pretend the run was down long (its last 2000
        # stored ids removed): the downtime gap reaches below the newest 1000 trades.
        with psycopg.connect(database_url) as conn:
            top = conn.execute("SELECT max(trade_id) FROM trades WHERE market = 1").fetchone()
            assert top is not None
            conn.execute("DELETE FROM trades WHERE market = 1 AND trade_id > %s", (top[0] - 300,))
        await asyncio.wait_for(
            ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 1200), UNTIL_GUARD_SECONDS
        )
        _, events = await _run_until(config, database_url, lambda s: s.stored > 1000)
    skipped = [e.message for e in events if e.kind is EventKind.GAP_SKIPPED]
    assert skipped and "set BINPRICE_API_KEY" in skipped[0], events
    assert not [e for e in events if e.kind is EventKind.BACKFILL_ERROR]
    # The newest 1000 trades are 10 s of this market: a gap the stream shows is fetched well
    # within them, so only the downtime's older ids are skipped.
    with psycopg.connect(database_url) as conn:
        gaps = list_gaps(conn, symbols, market=Market.USDM)
    assert [g for g in gaps if g.state == "skipped"]


async def test_spot_and_usdm_btcusdt_side_by_side_in_one_database(
    database_url: str, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """A spot and a USD-M capture of BTCUSDT run at once into one database, each through
    drops: each market's export (ndjson) is exactly what its exchange served."""
    faults = Faults(close_after_frames=400)
    spot = TestExchange(("BTCUSDT",), seed=33, rate=RATE, faults=faults)
    usdm = TestExchange(
        ("BTCUSDT",), seed=34, rate=RATE, faults=Faults(close_after_frames=400), market=Market.USDM
    )
    async with spot, usdm:
        runs = await asyncio.gather(
            _run_until(
                exchange_config(spot, tmp_path / "spot", ("BTCUSDT",)),
                database_url,
                lambda s: s.reconnects >= 3 and s.stored > 2000,
            ),
            _run_until(
                exchange_config(
                    usdm, tmp_path / "usdm", ("BTCUSDT",), market=Market.USDM, api_key=KEY
                ),
                database_url,
                lambda s: s.reconnects >= 3 and s.stored > 2000,
            ),
        )
        for (summary, _), ex, market in zip(
            runs, (spot, usdm), (Market.SPOT, Market.USDM), strict=True
        ):
            assert_complete(
                f"side-by-side-{market.value}",
                ex,
                database_url,
                ("BTCUSDT",),
                summary,
                market=market,
            )
        with binprice.connect(database_url) as store:
            for ex, market in ((spot, Market.SPOT), (usdm, Market.USDM)):
                rows = stored_rows(database_url, market)
                first, last = rows[0][1], rows[-1][1]
                served = [t for t in ex.produced("BTCUSDT") if first <= t.trade_id <= last]
                out = io.BytesIO()
                window = (ms_to_datetime(served[0].time_ms), ms_to_datetime(served[-1].time_ms + 1))
                store.export("BTCUSDT", *window, "ndjson", out, market=market.value)
                exported = [json.loads(line) for line in out.getvalue().splitlines()]
                assert [
                    (t["trade_id"], Decimal(t["price"]), Decimal(t["quantity"])) for t in exported
                ] == [(t.trade_id, t.price, t.quantity) for t in served]


async def test_the_api_key_appears_in_no_output_or_log(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """`ingest --market usdm` with BINPRICE_API_KEY (and once with --api-key), withheld
    frames backfilled with the key, verbose and json logs: the key is in none of it."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path), "BINPRICE_API_KEY": KEY}
    faults = Faults(skip_fraction=0.02)
    async with TestExchange(
        ("BTCUSDT",), seed=35, rate=300, faults=faults, market=Market.USDM
    ) as ex:
        args = (
            "--database-url",
            database_url,
            "ingest",
            "BTCUSDT",
            "--market",
            "usdm",
            "--ws-url",
            ex.ws_url,
            "--rest-url",
            ex.rest_url,
            "--max-trades",
            "300",
        )
        runs: list[tuple[int, str, str]] = [
            await binprice_async(env, *args, "--log-format", "json", "-v"),
            await binprice_async(
                clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)},
                *args,
                "--api-key",
                KEY,
                "--log-format",
                "plain",
                "-v",
            ),
        ]
    for code, out, err in runs:
        assert code == 0, err
        assert KEY not in out and KEY not in err
    assert len(stored_rows(database_url, Market.USDM)) >= 600
    config = IngestConfig(symbols=("BTCUSDT",), market=Market.USDM, api_key=KEY)
    assert KEY not in repr(config)
    assert KEY not in repr(binprice.IngestOptions(market="usdm", api_key=KEY))


def _ids(text: str) -> tuple[int, int]:
    """`"12..15"` → (12, 15)."""
    first, last = text.split("..")
    return int(first), int(last)


def test_a_futures_connection_is_stale_after_three_of_its_servers_pings() -> None:
    """Spot's watchdog is unchanged (60 s, three 20 s pings); the futures servers ping every
    3 minutes, so a quiet contract's connection is not cut before 9 minutes of silence."""
    assert StreamPolicy.of_market(Market.SPOT).stale_after == StreamPolicy().stale_after == 60
    assert StreamPolicy.of_market(Market.USDM).stale_after == 540
    assert StreamPolicy.of_market(Market.COINM).stale_after == 540
