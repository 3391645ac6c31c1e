"""No silent loss: what the stream cannot show is found by asking the exchange.

Each test ends by comparing the table with the exchange's own record (`assert_complete`): every
produced id stored exactly once, every id the exchange never served recorded as a hole. Run with
`-s` to see each fault class's numbers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg

from binprice.db.gaps import list_gaps
from binprice.exchange.backoff import Backoff, no_wait
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import run_ingest
from binprice.ingest.recorder import Recorder
from binprice.ingest.stats import IngestSummary
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from tests.fault_helpers import assert_complete, complete_from_first, ingest_until, wait_until
from tests.ingest_helpers import exchange_config, stored_rows

SYMBOLS = ("BTCUSDT", "ETHUSDT")
RATE = 1500


def _blind_for(seconds: float) -> StreamPolicy:
    """Every reconnect waits exactly `seconds`: the blind time after a drop."""
    return StreamPolicy(backoff=lambda: Backoff(initial=seconds, cap=seconds, rand=lambda: 1.0))


async def test_a_reset_then_a_quiet_market_is_found_by_asking_the_exchange(
    database_url: str, tmp_path: Path
) -> None:
    """The connection is reset, binprice reconnects 0.6 s later, and the market has gone quiet:
    no later trade will ever reveal the gap, so the exchange's newest id does; every id is
    stored within 10 s of the reconnect."""
    stats = Recorder()
    stop = asyncio.Event()
    async with TestExchange(SYMBOLS, seed=51, rate=RATE) as ex:
        config = exchange_config(ex, tmp_path, SYMBOLS)
        run = asyncio.create_task(
            run_ingest(config, database_url, stop=stop, recorder=stats, policy=_blind_for(0.6))
        )
        await wait_until(lambda: stats.summary().stored >= 1000, 20)
        at_drop = {s: ex.produced_count(s) for s in SYMBOLS}
        ex.drop_connections()
        for symbol in SYMBOLS:  # trades happen while binprice is blind ...
            await asyncio.wait_for(ex.wait_produced(symbol, at_drop[symbol] + 200), 10)
        ex.paused.update(SYMBOLS)  # ... then the market goes quiet
        assert not ex.connections, "binprice reconnected before the market went quiet"
        await wait_until(lambda: complete_from_first(ex, database_url, SYMBOLS), 10)
        stop.set()
        summary = await asyncio.wait_for(run, 30)
        numbers = assert_complete("reset-then-quiet", ex, database_url, SYMBOLS, summary)
    assert summary.reconnects >= 1
    assert summary.reconcile_found >= 2 * 200  # both symbols' blind trades, found by REST
    assert numbers["gaps_filled"] == numbers["gaps_recorded"] >= 2
    assert numbers["tail_gaps_open"] == 0  # the quiet exchange had nothing past the last id


async def test_a_rare_symbol_with_drops_and_a_stop_right_after_a_drop(
    database_url: str, tmp_path: Path
) -> None:
    """A symbol trading twice a second, its connection cut every 3 trades and 2 s of blindness
    each time; stopped right after a drop with a trade made meanwhile: the stop records the
    tail as an open gap, and the next start fetches it."""
    faults = Faults(close_after_frames=3)
    symbols = ("RAREUSDT",)
    stats = Recorder()
    stop = asyncio.Event()
    async with TestExchange(symbols, seed=52, rate=2, faults=faults) as ex:
        config = exchange_config(ex, tmp_path, symbols)
        run = asyncio.create_task(
            run_ingest(config, database_url, stop=stop, recorder=stats, policy=_blind_for(2.0))
        )
        await wait_until(lambda: stats.summary().reconnects >= 2 and bool(ex.connections), 30)
        await wait_until(lambda: not ex.connections, 30)  # the next drop
        blind_from = ex.produced_count("RAREUSDT")
        await asyncio.wait_for(ex.wait_produced("RAREUSDT", blind_from + 1), 10)
        assert not ex.connections, "binprice reconnected before the stop"
        stop.set()
        first = await asyncio.wait_for(run, 30)
        missed = ex.produced("RAREUSDT")[-1].trade_id
        with psycopg.connect(database_url) as conn:
            gaps = list_gaps(conn, symbols)
        top = max(r[1] for r in stored_rows(database_url))
        (tail,) = [g for g in gaps if g.state == "open"]
        assert tail.first_id == top + 1 and tail.last_id >= missed
        assert first.reconcile_found >= 1

        faults.close_after_frames = None
        again = exchange_config(ex, tmp_path, symbols)
        stop2 = asyncio.Event()
        stats2 = Recorder()
        run2 = asyncio.create_task(
            run_ingest(again, database_url, stop=stop2, recorder=stats2, policy=_blind_for(0.1))
        )
        await wait_until(lambda: stats2.summary().stored >= 4, 30)
        ex.paused.add("RAREUSDT")
        produced = ex.produced("RAREUSDT")[-1].trade_id
        await wait_until(lambda: max(r[1] for r in stored_rows(database_url)) >= produced, 10)
        stop2.set()
        second = await asyncio.wait_for(run2, 30)
        numbers = assert_complete("rare-symbol-stop-after-drop", ex, database_url, symbols, second)
        with psycopg.connect(database_url) as conn:
            states = {(g.first_id, g.last_id): g.state for g in list_gaps(conn, symbols)}
    assert states[(tail.first_id, tail.last_id)] == "filled"
    assert numbers["gaps_recorded"] >= 3


def _both_delivered_through_drops(s: IngestSummary) -> bool:
    """Six drops, and both replicas delivered first."""
    firsts = s.delivered_first.values()
    return s.reconnects >= 6 and len(firsts) == 2 and all(n > 0 for n in firsts)


async def test_redundant_connections_under_drops_need_no_rest_call(
    database_url: str, tmp_path: Path
) -> None:
    """`--redundancy 2`: every connection is cut after 3000 frames, but the two replicas are
    half a cycle apart, so one always delivers what the other misses: nothing is backfilled
    over REST, and the summary says which connection delivered how many trades first."""
    faults = Faults(close_after_frames=3000)
    policy = StreamPolicy(backoff=no_wait, replica_stagger=0.5)
    async with TestExchange(SYMBOLS, seed=53, rate=RATE, faults=faults) as ex:
        config = exchange_config(ex, tmp_path, SYMBOLS, redundancy=2)
        summary = await ingest_until(
            config, database_url, _both_delivered_through_drops, policy=policy
        )
        numbers = assert_complete(
            "redundancy-2-drop-every-3000", ex, database_url, SYMBOLS, summary
        )
    assert summary.reconnects >= 6
    assert summary.backfilled == 0
    assert set(summary.delivered_first) == {"BTCUSDT+1#1", "BTCUSDT+1#2"}
    assert all(n > 0 for n in summary.delivered_first.values())
    assert sum(summary.delivered_first.values()) == summary.received
    print(f"  delivered first: {summary.delivered_first}, gaps {numbers['gaps_recorded']}")
