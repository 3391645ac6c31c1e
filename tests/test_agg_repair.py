"""`binprice gaps --verify --against-exchange --kind aggTrades` and `gaps --repair --kind
aggTrades` against the test exchange and real PostgreSQL (#19 item 4): a range of aggregate
trades missing from the middle of a capture, and the exchange gone on after the stop, found by
the check and filled by the repair through `aggTrades?fromId=` (no API key, on Spot and USD-M),
each aggregate exactly as the exchange has it."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from binprice.db.gaps import list_gaps
from binprice.kinds import TradeKind
from binprice.markets import Market
from binprice.testing import TestExchange
from tests.fault_helpers import ingest_until, wait_until
from tests.ingest_helpers import binprice_async, exchange_config
from tests.test_agg_ingest import assert_aggs_complete, served_aggs, stored_aggs

AGG = TradeKind.AGG_TRADES
SYMBOL = "BTCUSDT"
#: A guard against a hang, not a measured duration: each wait ends once its condition holds.
UNTIL_GUARD_SECONDS = 60


def _delete(url: str, market: Market, low: int, high: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "DELETE FROM agg_trades WHERE market = %s AND symbol = %s AND agg_id BETWEEN %s AND %s",
            (market.number, SYMBOL, low, high),
        )


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM], ids=["spot", "usdm"])
async def test_repair_kind_aggtrades_fills_a_missing_range_and_the_tail_exactly(
    market: Market, database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """Aggregates taken from the middle of a capture, and 100 more traded after its stop:
    `gaps --verify --against-exchange --kind aggTrades` reports the range and the tail from the
    exchange's newest aggregate id (exit 1); `--repair --kind aggTrades` (no API key) records
    and fetches both, every aggregate stored once with the exchange's fields; afterwards the
    check is ok, the range's gap row is of kind 1 and filled, and no trade is stored."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange((SYMBOL,), seed=46, rate=1000, market=market) as ex:
        config = exchange_config(ex, tmp_path, (SYMBOL,), market=market, kind=AGG)
        await ingest_until(config, database_url, lambda s: s.stored >= 500)
        rows = stored_aggs(database_url, market)
        top = rows[-1][1]
        aggregates = ex.generators[SYMBOL].aggregates
        await wait_until(
            lambda: aggregates.first_id + len(aggregates) > top + 100, UNTIL_GUARD_SECONDS
        )
        ex.paused.add(SYMBOL)
        low, high = rows[100][1], rows[300][1]
        _delete(database_url, market, low, high)
        base = ("--database-url", database_url, "gaps", "--market", market.value)
        agg = ("--kind", "aggTrades", "--rest-url", ex.rest_url)

        code, out, err = await binprice_async(
            env, *base, *agg, "--verify", "--against-exchange", "--json"
        )
        assert code == 1, out + err
        (found,) = json.loads(out)["symbols"]
        newest = found["exchange_last_id"]
        assert newest >= top + 100 and found["behind"] > 0
        assert (low, high) in [(h["first_id"], h["last_id"]) for h in found["holes"]]

        code, out, err = await binprice_async(env, *base, *agg, "--repair")
        assert code == 0, out + err
        assert f"{SYMBOL} {low}..{high} ({high - low + 1:,} ids): filled" in out, out
        assert "aggregate trades stored" in out, out

        code, out, err = await binprice_async(env, *base, *agg, "--verify", "--against-exchange")
        assert code == 0, out + err
        assert "up to date with the exchange" in " ".join(out.split()), out
        stored = assert_aggs_complete(ex, database_url, (SYMBOL,), market)
        assert stored[-1][1] == newest
        assert [r for r in stored if low <= r[1] <= high] == served_aggs(ex, SYMBOL, low, high)
    with psycopg.connect(database_url) as conn:
        states = {
            (g.first_id, g.last_id): g.state for g in list_gaps(conn, market=market, kind=AGG)
        }
        trades = conn.execute("SELECT count(*) FROM trades").fetchone()
    assert states[(low, high)] == "filled"
    assert trades == (0,)
