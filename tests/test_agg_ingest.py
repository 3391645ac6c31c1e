"""`binprice ingest --stream aggTrade` against the test exchange and real PostgreSQL (#19 item 4):
every aggregate trade stored once with its exact fields through drops, withheld frames and
reconnects (spot and USD-M), completeness by aggregate id (gaps of kind 1, backfill through
`aggTrades?fromId=`, checkpoints per kind), a trade run and an aggregate run of one symbol side by
side, and a restart that resumes after the stored aggregate id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

import binprice
from binprice.db.gaps import Verification, list_gaps, record_gaps, verify_gaps
from binprice.events import EventKind, IngestEvent
from binprice.exchange.backoff import no_wait
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import IngestConfig
from binprice.ingest.stats import IngestSummary
from binprice.kinds import TradeKind
from binprice.markets import Market
from binprice.testing import Faults, TestExchange
from tests.fault_helpers import assert_complete, ingest_until, wait_until
from tests.ingest_helpers import binprice_async, exchange_config, stored_rows

AggRow = tuple[str, int, Decimal, Decimal, int, int, int, bool]
RATE = 1000
#: A guard against a hang, not a measured duration: each run stops once its condition holds.
UNTIL_GUARD_SECONDS = 60
AGG = TradeKind.AGG_TRADES


async def _run_until(
    config: IngestConfig, url: str, done: Callable[[IngestSummary], bool]
) -> tuple[IngestSummary, list[IngestEvent]]:
    """Run until `done(summary so far)` holds, then stop: the summary and the run's events."""
    events: list[IngestEvent] = []
    policy = StreamPolicy(backoff=no_wait)
    summary = await ingest_until(config, url, done, policy=policy, on_event=events.append)
    return summary, events


async def _drop_after(ex: TestExchange, symbol: str, trades: int) -> None:
    """Drop every open connection once `trades` more trades of `symbol` were produced."""
    await wait_until(lambda: ex.produced_count(symbol) >= trades, UNTIL_GUARD_SECONDS)
    ex.drop_connections()


def stored_aggs(url: str, market: Market) -> list[AggRow]:
    """Every stored aggregate trade of `market`, by symbol and aggregate id."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, agg_id, price, quantity, first_trade_id, last_trade_id, timestamp, "
            "is_buyer_maker FROM agg_trades WHERE market = %s ORDER BY symbol, agg_id",
            (market.number,),
        ).fetchall()
    return [
        (s, a, p, q, f, lt, int(ts.astimezone(UTC).timestamp() * 1000 + 0.5), m)
        for s, a, p, q, f, lt, ts, m in rows
    ]


def served_aggs(ex: TestExchange, symbol: str, first: int, last: int) -> list[AggRow]:
    """The exchange's aggregates `first..last` of `symbol` (its timeline), field by field."""
    generator = ex.generators[symbol]
    base = generator.aggregates.first_id
    out = []
    for agg_id in range(first, last + 1):
        a = generator.agg(agg_id - base)
        out.append(
            (
                a.symbol,
                a.agg_id,
                a.price,
                a.quantity,
                a.first_trade_id,
                a.last_trade_id,
                a.time_ms,
                a.is_buyer_maker,
            )
        )
    return out


def assert_aggs_complete(
    ex: TestExchange, url: str, symbols: tuple[str, ...], market: Market
) -> list[AggRow]:
    """Every aggregate between the first and the last stored one is stored once, exactly as the
    exchange has it; `gaps --verify --kind aggTrades` agrees; no aggregate gap is left open
    below the last stored id. Returns the stored rows."""
    rows = stored_aggs(url, market)
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    for symbol in symbols:
        mine = [r for r in rows if r[0] == symbol]
        assert mine, f"no aggregate stored for {symbol}"
        assert mine == served_aggs(ex, symbol, mine[0][1], mine[-1][1])
    with psycopg.connect(url) as conn:
        verification = verify_gaps(conn, symbols, market=market, kind=AGG)
        gaps = list_gaps(conn, symbols, market=market, kind=AGG)
    assert verification.ok, verification
    assert [c.trades for c in verification.symbols] == [
        len([r for r in rows if r[0] == s]) for s in symbols
    ]
    last = {s: max(r[1] for r in rows if r[0] == s) for s in symbols}
    assert not [g for g in gaps if g.state == "open" and g.last_id <= last[g.symbol]], gaps
    return rows


@pytest.mark.parametrize(
    "market", [Market.SPOT, Market.USDM, Market.COINM], ids=["spot", "usdm", "coinm"]
)
async def test_aggregate_trades_exactly_once_through_drops_withheld_frames_and_reconnects(
    market: Market, database_url: str, tmp_path: Path
) -> None:
    """Connections cut every 300 frames, 1 % of trades withheld from the stream (so are the
    aggregates holding them; REST has them), and one hard drop: every aggregate between the
    first and the last stored one is stored once with the exchange's exact fields, the gaps are
    of aggregate ids (kind 1) and filled through `aggTrades?fromId=`; nothing lands in `trades`
    and no gap or checkpoint of trades is written."""
    symbols = ("BTCUSDT", "ETHUSDT")
    faults = Faults(close_after_frames=300, skip_fraction=0.01)
    async with TestExchange(symbols, seed=41, rate=RATE, faults=faults, market=market) as ex:
        config = exchange_config(ex, tmp_path, symbols, market=market, kind=AGG)
        (summary, events), _ = await asyncio.gather(
            _run_until(
                config,
                database_url,
                lambda s: s.reconnects >= 4 and s.backfilled > 0 and s.stored > 1500,
            ),
            _drop_after(ex, "BTCUSDT", ex.produced_count("BTCUSDT") + 2000),
        )
        rows = assert_aggs_complete(ex, database_url, symbols, market)
    assert summary.backfilled > 0 and summary.reconnects >= 4
    assert summary.stored == len(rows)
    opened = [e.message for e in events if e.kind is EventKind.GAP]
    assert opened and all(": aggregate trades " in m for m in opened), opened
    assert stored_rows(database_url, market) == []
    with psycopg.connect(database_url) as conn:
        kinds = conn.execute("SELECT DISTINCT kind FROM gaps").fetchall()
        checkpoints = conn.execute("SELECT DISTINCT kind FROM checkpoints").fetchall()
    assert kinds == [(1,)]
    assert checkpoints in ([], [(1,)])


async def test_a_restart_resumes_after_the_stored_aggregate_id(
    database_url: str, tmp_path: Path
) -> None:
    """A second run starts after the last stored aggregate id: the aggregates traded while no
    run was up are a gap of aggregate ids, fetched from REST, so the two runs' rows join
    without a hole or a duplicate; the checkpoint of aggregates moves to the first run's last
    id."""
    symbols = ("BTCUSDT",)
    async with TestExchange(symbols, seed=42, rate=RATE, market=Market.USDM) as ex:
        config = exchange_config(ex, tmp_path, symbols, market=Market.USDM, kind=AGG)
        first, _ = await _run_until(config, database_url, lambda s: s.stored > 300)
        before = stored_aggs(database_url, Market.USDM)
        assert first.stored == len(before)
        top = before[-1][1]
        generator = ex.generators["BTCUSDT"]
        # The exchange goes on while nothing runs: 200 more aggregates at least.
        await wait_until(
            lambda: len(generator.aggregates) + generator.aggregates.first_id > top + 200,
            UNTIL_GUARD_SECONDS,
        )
        second, events = await _run_until(
            config, database_url, lambda s: s.backfilled >= 200 and s.stored > 500
        )
        rows = assert_aggs_complete(ex, database_url, symbols, Market.USDM)
    assert rows[: len(before)] == before
    assert second.backfilled >= 200
    # The downtime starts right after the first run's last stored aggregate (the first part
    # of it may be the tail that run recorded at its stop, resumed as an open gap).
    opened = [e.message for e in events if e.kind in (EventKind.GAP, EventKind.GAP_RESUMED)]
    assert [m for m in opened if f" {top + 1}.." in m], opened
    assert {r[1] for r in rows} >= set(range(top + 1, top + 201))
    with psycopg.connect(database_url) as conn:
        checkpoint = conn.execute(
            "SELECT kind, verified_through FROM checkpoints WHERE market = 1"
        ).fetchall()
    assert checkpoint == [(1, top)]


async def test_a_trade_run_and_an_aggregate_run_of_one_symbol_never_mix(
    database_url: str, tmp_path: Path
) -> None:
    """A trade run and an aggregate run of BTCUSDT at once, each through drops and withheld
    frames: each series is complete on its own, each gap row and checkpoint carries its own
    kind, and `gaps --verify` of either kind is ok (a gap of aggregate ids never accounts for
    trade ids, nor the other way round)."""
    symbols = ("BTCUSDT",)
    faults = Faults(close_after_frames=400, skip_fraction=0.01)
    async with TestExchange(symbols, seed=43, rate=RATE, faults=faults) as ex:
        trades, aggs = await asyncio.gather(
            _run_until(
                exchange_config(ex, tmp_path / "trades", symbols),
                database_url,
                lambda s: s.reconnects >= 3 and s.backfilled > 0 and s.stored > 2000,
            ),
            _run_until(
                exchange_config(ex, tmp_path / "aggs", symbols, kind=AGG),
                database_url,
                lambda s: s.reconnects >= 3 and s.backfilled > 0 and s.stored > 500,
            ),
        )
        assert_complete("agg-side-by-side", ex, database_url, symbols, trades[0])
        rows = assert_aggs_complete(ex, database_url, symbols, Market.SPOT)
    assert aggs[0].stored == len(rows) and aggs[0].backfilled > 0
    with psycopg.connect(database_url) as conn:
        trade_gaps = list_gaps(conn, symbols)
        agg_gaps = list_gaps(conn, symbols, kind=AGG)
        by_kind: dict[int, int] = dict(
            conn.execute("SELECT kind, count(*) FROM gaps GROUP BY kind").fetchall()
        )
        trade_ids = conn.execute("SELECT min(trade_id), max(trade_id) FROM trades").fetchone()
        agg_ids = conn.execute("SELECT min(agg_id), max(agg_id) FROM agg_trades").fetchone()
    assert trade_gaps and agg_gaps
    assert by_kind == {0: len(trade_gaps), 1: len(agg_gaps)}
    assert trade_ids is not None and agg_ids is not None
    # The two series' ids are different numbers: each kind's gaps lie in its own id range.
    assert all(trade_ids[0] <= g.first_id <= trade_ids[1] + 1 for g in trade_gaps)
    assert all(agg_ids[0] <= g.first_id <= agg_ids[1] + 1 for g in agg_gaps)


async def test_aggregate_streams_rotate_make_before_break_with_redundant_connections(
    database_url: str, tmp_path: Path
) -> None:
    """`serverShutdown` every 800 frames on two redundant connections per group: a successor
    takes over before its predecessor closes, each aggregate is taken from whichever connection
    delivers it first and the rest are dropped as duplicates, and no gap is fetched."""
    symbols = ("BTCUSDT",)
    faults = Faults(shutdown_after_frames=800, shutdown_close_delay=3.0)
    async with TestExchange(symbols, seed=45, rate=RATE, faults=faults) as ex:
        config = exchange_config(ex, tmp_path, symbols, kind=AGG, redundancy=2)
        summary, _ = await _run_until(
            config,
            database_url,
            lambda s: s.rotations >= 2 and s.duplicates > 0 and s.stored > 500,
        )
        rows = assert_aggs_complete(ex, database_url, symbols, Market.SPOT)
    assert summary.rotations >= 2 and summary.duplicates > 0
    assert summary.stored == len(rows)
    assert summary.backfilled == 0
    assert len(summary.delivered_first) == 2


async def test_spooled_aggregates_of_a_stopped_run_are_committed_by_the_next(
    database_url: str, tmp_path: Path
) -> None:
    """Aggregates a run could not commit wait in its spool as aggregate chunks; the next
    aggregate run adopts them, commits them to `agg_trades` (decoded back exactly), and fetches
    what was traded between them and its stream."""
    from binprice.db.aggcopy import AggCopyEncoder
    from binprice.ingest.spool import Spool

    symbols = ("BTCUSDT",)
    async with TestExchange(symbols, seed=46, rate=RATE) as ex:
        generator = ex.generators["BTCUSDT"]
        await wait_until(lambda: len(generator.aggregates) >= 50, UNTIL_GUARD_SECONDS)
        spooled = [generator.agg(k) for k in range(40)]
        batch = AggCopyEncoder(Market.SPOT).batch(spooled)
        left = Spool.open(tmp_path / "spool")
        left.append(batch)
        left.close()  # its chunk stays for the next run
        config = exchange_config(ex, tmp_path, symbols, kind=AGG)
        summary, events = await _run_until(
            config, database_url, lambda s: s.stored > 300 and s.backfilled > 0
        )
        rows = assert_aggs_complete(ex, database_url, symbols, Market.SPOT)
    assert [e for e in events if e.kind is EventKind.SPOOL_ADOPTED]
    assert rows[0][1] == spooled[0].agg_id
    assert summary.stored == len(rows)


async def test_verify_against_the_exchange_sees_the_tail_and_disproves_a_false_hole(
    database_url: str, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """After an aggregate run of USD-M, `verify(kind="aggTrades", against_exchange=True)`:
    the aggregates the exchange traded since are a tail up to its newest aggregate id (no
    hole: ok); a hole recorded over aggregates the exchange does have (their rows deleted) is
    disproved by `aggTrades?fromId=` (not ok), though without the exchange it accounts."""
    symbols = ("BTCUSDT",)
    async with TestExchange(symbols, seed=47, rate=RATE, market=Market.USDM) as ex:
        config = exchange_config(ex, tmp_path, symbols, market=Market.USDM, kind=AGG)
        await _run_until(config, database_url, lambda s: s.stored > 300)
        generator = ex.generators["BTCUSDT"]
        top = stored_aggs(database_url, Market.USDM)[-1][1]
        await wait_until(
            lambda: generator.aggregates.first_id + len(generator.aggregates) > top + 50,
            UNTIL_GUARD_SECONDS,
        )
        ex.paused.add("BTCUSDT")
        newest = generator.aggregates.first_id + len(generator.aggregates) - 1
        with binprice.connect(database_url) as store:

            def verify(against: bool) -> Verification:
                return store.verify(
                    symbols,
                    against_exchange=against,
                    rest_url=ex.rest_url if against else None,
                    market="usdm",
                    kind="aggTrades",
                )

            ahead = await asyncio.to_thread(verify, True)
            (symbol,) = ahead.symbols
            assert ahead.ok and ahead.against_exchange, ahead
            assert symbol.exchange_last_id == newest
            assert symbol.tail is not None and symbol.tail.last_id == newest
            first, last = top - 100, top - 90
            with psycopg.connect(database_url) as conn:
                conn.execute(
                    "DELETE FROM agg_trades WHERE market = 1 AND agg_id BETWEEN %s AND %s",
                    (first, last),
                )
                record_gaps(conn, "BTCUSDT", [(first, last)], "hole", market=Market.USDM, kind=AGG)
            assert (await asyncio.to_thread(verify, False)).ok
            false_hole = await asyncio.to_thread(verify, True)
        code, out, err = await binprice_async(
            clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)},
            *("--database-url", database_url, "gaps", "--verify", "--against-exchange"),
            *("--kind", "aggTrades", "--market", "usdm", "--rest-url", ex.rest_url, "--json"),
        )
    assert code == 1, out + err
    disproved = json.loads(out)["symbols"][0]["disproved_holes"]
    assert disproved == [{"first_id": first, "last_id": last}]
    assert not false_hole.ok
    assert false_hole.symbols[0].disproved == ((first, last),)
