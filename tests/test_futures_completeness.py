"""`binprice gaps --verify [--against-exchange]` and `gaps --repair --market usdm|coinm` against
the test exchange's futures markets and real PostgreSQL (#19): a range missing from the stored
ids is found, and repaired exactly from the market's own REST API; without the API key the
futures' `historicalTrades` needs, what the newest trades hold is repaired and the rest is
said in one line with the hint; Spot's rows are never touched."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psycopg
import pytest

from binprice.db.gaps import list_gaps
from binprice.markets import Market
from binprice.testing import Faults, TestExchange
from tests.fault_helpers import assert_complete, ingest_until
from tests.ingest_helpers import binprice_async, exchange_config, stored_rows

KEY = "k3yWithLettersAndDigits0123456789"
SYMBOL = {Market.USDM: "BTCUSDT", Market.COINM: "BTCUSD_PERP"}
#: A guard against a hang, not a measured duration.
PRODUCED_GUARD_SECONDS = 30


def _env(clean_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path / "data")}
    for name in ("BINPRICE_API_KEY", "BINPRICE_MARKET"):
        env.pop(name, None)
    return env


def _delete(url: str, market: Market, symbol: str, low: int, high: int) -> None:
    """Take stored trades away by hand: ids no recorded gap accounts for."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "DELETE FROM trades WHERE market = %s AND symbol = %s AND trade_id BETWEEN %s AND %s",
            (market.number, symbol, low, high),
        )


def _states(url: str, market: Market, symbol: str) -> dict[tuple[int, int], str]:
    with psycopg.connect(url) as conn:
        return {(g.first_id, g.last_id): g.state for g in list_gaps(conn, [symbol], market=market)}


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM], ids=["usdm", "coinm"])
async def test_futures_verify_finds_a_missing_range_and_the_tail_and_repair_fills_them_exactly(
    market: Market, database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """Trades taken from the middle of a futures capture and the exchange gone on after the
    stop: `gaps --verify --market M` reports the range (exit 1), `--against-exchange` the tail
    from the market's newest id; `--repair` with the key fetches both from the market's
    `historicalTrades` and stores exactly what the exchange served; Spot stays empty."""
    env = _env(clean_env, tmp_path)
    symbol = SYMBOL[market]
    async with TestExchange((symbol,), seed=71, rate=1000, market=market) as ex:
        config = exchange_config(ex, tmp_path, (symbol,), market=market, api_key=KEY)
        await ingest_until(config, database_url, lambda s: s.stored >= 600)
        produced = ex.produced_count(symbol)
        await asyncio.wait_for(ex.wait_produced(symbol, produced + 300), PRODUCED_GUARD_SECONDS)
        ex.paused.add(symbol)
        newest = ex.produced(symbol)[-1].trade_id
        rows = stored_rows(database_url, market)
        low, high = rows[100][1], rows[400][1]
        _delete(database_url, market, symbol, low, high)
        base = ("--database-url", database_url, "gaps", "--market", market.value)
        rest = ("--rest-url", ex.rest_url)

        code, out, err = await binprice_async(env, *base, "--verify")
        assert code == 1, out + err
        assert f"unaccounted: {symbol} {low}..{high}" in out

        code, out, err = await binprice_async(
            env, *base, "--verify", "--against-exchange", *rest, "--api-key", KEY, "--json"
        )
        assert code == 1, out + err
        check = json.loads(out)
        (found,) = check["symbols"]
        assert found["exchange_last_id"] == newest and check["unasked_holes"] == 0
        assert found["unaccounted"] == high - low + 1 and found["behind"] >= 300
        assert [(h["first_id"], h["last_id"]) for h in found["holes"]] == [(low, high)]

        code, out, err = await binprice_async(env, *base, "--repair", *rest, "--api-key", KEY)
        assert code == 0, out + err
        assert f"{symbol} {low}..{high} ({high - low + 1:,} ids): filled" in out
        assert "BINPRICE_API_KEY" not in out + err and KEY not in out + err
        code, out, err = await binprice_async(
            env, *base, "--verify", "--against-exchange", *rest, "--api-key", KEY
        )
        assert code == 0, out + err
        assert "up to date with the exchange" in " ".join(out.split())
        numbers = assert_complete(
            f"{market.value}-repair", ex, database_url, (symbol,), market=market
        )
        assert stored_rows(database_url, market)[-1][1] == newest
    assert _states(database_url, market, symbol)[(low, high)] == "filled"
    assert stored_rows(database_url, Market.SPOT) == []
    print(f"  repaired {high - low + 1} ids and the tail; {numbers}")


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM], ids=["usdm", "coinm"])
async def test_futures_repair_without_a_key_fills_from_the_newest_trades_and_says_what_needs_one(
    market: Market, database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """No API key: a missing range inside the newest 1000 trades is repaired from `trades`
    (no key needed); an older one stays open (exit 1) and one line says the key is what is
    missing; a recorded hole (an insurance-fund trade) is not asked about again, said in the
    same line. With the key, the rest is repaired and the hole confirmed."""
    env = _env(clean_env, tmp_path)
    symbol = SYMBOL[market]
    faults = Faults()
    async with TestExchange((symbol,), seed=72, rate=1000, faults=faults, market=market) as ex:
        config = exchange_config(ex, tmp_path, (symbol,), market=market, api_key=KEY)

        def liquidate_once(stored: int) -> bool:
            if stored >= 200 and not ex.generators[symbol].non_market:
                faults.non_market_next = 1
            if stored >= 2600:
                ex.paused.add(symbol)  # the tail stays inside the newest trades
            return stored >= 2600

        await ingest_until(config, database_url, lambda s: liquidate_once(s.stored))
        (taken,) = ex.generators[symbol].non_market
        hole = ex.generators[symbol].first_id + taken
        rows = stored_rows(database_url, market)
        old = (rows[300][1], rows[500][1])
        recent = (rows[-200][1], rows[-100][1])
        assert ex.produced(symbol)[-1].trade_id - old[1] > 1000  # older than `trades` serves
        for low, high in (old, recent):
            _delete(database_url, market, symbol, low, high)
        base = ("--database-url", database_url, "gaps", "--market", market.value)
        rest = ("--rest-url", ex.rest_url)

        keys_sent = dict(ex.rest.keys_seen)
        code, out, err = await binprice_async(env, *base, "--repair", *rest)
        assert code == 1, out + err
        assert (
            f"{symbol} {recent[0]}..{recent[1]} ({recent[1] - recent[0] + 1:,} ids): filled" in out
        )
        assert f"{symbol} {old[0]}..{old[1]} ({old[1] - old[0] + 1:,} ids): open" in out
        hints = [line for line in out.splitlines() if "BINPRICE_API_KEY" in line]
        assert hints == [
            f"{old[1] - old[0] + 1:,} ids older than the newest trades stay open and 1 recorded "
            "holes were not asked about again: only historicalTrades reaches them, and on the "
            "futures markets it needs an API key (set BINPRICE_API_KEY or give --api-key), or "
            "import the days' archive files"
        ], out
        assert dict(ex.rest.keys_seen) == keys_sent  # no historicalTrades asked without a key
        states = _states(database_url, market, symbol)
        assert (
            states[old] == "open" and states[recent] == "filled" and states[(hole, hole)] == "hole"
        )

        code, out, err = await binprice_async(env, *base, "--verify", "--against-exchange", *rest)
        assert code == 0, out + err  # an open gap accounts for the old range
        assert "1 recorded holes were not asked about again" in " ".join(out.split())

        code, out, err = await binprice_async(env, *base, "--repair", *rest, "--api-key", KEY)
        assert code == 0, out + err
        assert f"{symbol} {old[0]}..{old[1]} ({old[1] - old[0] + 1:,} ids): filled" in out
        assert f"{symbol} {hole}..{hole} (1 ids): hole" in out
        assert "BINPRICE_API_KEY" not in out
        assert_complete(f"{market.value}-keyless", ex, database_url, (symbol,), market=market)
    assert stored_rows(database_url, Market.SPOT) == []
