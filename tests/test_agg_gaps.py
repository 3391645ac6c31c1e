"""Completeness by aggregate id in the database (#19 item 4): gaps and checkpoints of aggregate
ids (kind 1) and of trade ids (kind 0) never answer for each other, `gaps --verify --kind
aggTrades` reads `agg_trades`, and the CLI's `gaps --kind` and `ingest --stream aggTrade`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from binprice.db.gaprows import GapRows, settle_gap
from binprice.db.gaps import (
    checkpoint_starts,
    list_gaps,
    record_gaps,
    set_checkpoints,
    verify_gaps,
)
from binprice.kinds import TradeKind
from binprice.markets import Market
from binprice.testing import TestExchange
from tests.conftest import run_binprice
from tests.ingest_helpers import binprice_async

AGG = TradeKind.AGG_TRADES
START = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _store_aggs(
    conn: psycopg.Connection[tuple[object, ...]], ids: list[int], market: Market
) -> None:
    """Aggregates `ids` of BTCUSDT, one a second from START, each of one trade."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO agg_trades (market, symbol, agg_id, price, quantity, first_trade_id, "
            "last_trade_id, timestamp, is_buyer_maker) "
            "VALUES (%s, 'BTCUSDT', %s, 1.5, 2, %s, %s, %s, false)",
            [(market.number, i, 1000 + i, 1000 + i, START + timedelta(seconds=i)) for i in ids],
        )


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM], ids=["spot", "usdm"])
def test_a_gap_of_trade_ids_never_accounts_for_missing_aggregate_ids(
    market: Market, database_url: str
) -> None:
    """Aggregates 1..10 without 4..5: a recorded gap of *trade* ids 4..5 leaves the check of
    aggregates not ok; a hole of aggregate ids 4..5 makes it ok; each kind's list holds only its
    own gaps."""
    with psycopg.connect(database_url) as conn:
        _store_aggs(conn, [i for i in range(1, 11) if i not in (4, 5)], market)
        record_gaps(conn, "BTCUSDT", [(4, 5)], "hole", market=market)
        check = verify_gaps(conn, ["BTCUSDT"], market=market, kind=AGG)
        assert not check.ok
        (symbol,) = check.symbols
        assert (symbol.trades, symbol.first_id, symbol.last_id) == (8, 1, 10)
        assert symbol.unaccounted_ranges == [(4, 5)]
        record_gaps(conn, "BTCUSDT", [(4, 5)], "hole", market=market, kind=AGG)
        assert verify_gaps(conn, ["BTCUSDT"], market=market, kind=AGG).ok
        assert [(g.first_id, g.last_id) for g in list_gaps(conn, market=market, kind=AGG)] == [
            (4, 5)
        ]
        assert len(list_gaps(conn, market=market)) == 1
        kinds = conn.execute("SELECT kind FROM gaps ORDER BY kind").fetchall()
    assert kinds == [(0,), (1,)]


async def test_gap_rows_and_settling_are_of_their_own_kind(database_url: str) -> None:
    """An open gap of aggregate ids is settled by stored aggregates (not by trades), an open gap
    of trade ids over the same range is not; a keeper's rows of one kind see only that kind's
    open gaps."""
    with psycopg.connect(database_url) as conn:
        _store_aggs(conn, list(range(1, 11)), Market.SPOT)
        record_gaps(conn, "BTCUSDT", [(4, 5)], "open")
        record_gaps(conn, "BTCUSDT", [(4, 5), (12, 13)], "open", kind=AGG)
    rows = GapRows(database_url, kind=AGG)
    trade_rows = GapRows(database_url)
    try:
        live = await rows.connection()
        assert not await settle_gap(live, "BTCUSDT", 4, 5)
        assert await settle_gap(live, "BTCUSDT", 4, 5, kind=AGG)
        assert await rows.open_gaps(["BTCUSDT"]) == [(("BTCUSDT", 12, 13), [(12, 13)])]
        assert await trade_rows.open_gaps(["BTCUSDT"]) == [(("BTCUSDT", 4, 5), [(4, 5)])]
        assert await rows.state("BTCUSDT", 4, 5) == "filled"
        assert await trade_rows.state("BTCUSDT", 4, 5) == "open"
    finally:
        await rows.close()
        await trade_rows.close()


def test_checkpoints_are_per_kind(database_url: str) -> None:
    """A checkpoint of aggregate ids and one of trade ids of the same symbol are two rows; the
    aggregate one starts its check at the minute of the stored aggregate it names."""
    with psycopg.connect(database_url) as conn:
        _store_aggs(conn, list(range(1, 200)), Market.SPOT)
        set_checkpoints(conn, {"BTCUSDT": 150}, kind=AGG)
        set_checkpoints(conn, {"BTCUSDT": 7})
        set_checkpoints(conn, {"BTCUSDT": 120}, kind=AGG)  # never moves back
        rows = conn.execute(
            "SELECT kind, verified_through FROM checkpoints ORDER BY kind"
        ).fetchall()
        starts = checkpoint_starts(conn, ["BTCUSDT"], kind=AGG)
        trade_starts = checkpoint_starts(conn, ["BTCUSDT"])
    assert rows == [(0, 7), (1, 150)]
    assert starts == {"BTCUSDT": START + timedelta(minutes=2)}  # aggregate 150: 12:02:30
    assert trade_starts == {}  # no trade is stored


def test_gaps_kind_on_the_command_line(database_url: str, clean_env: dict[str, str]) -> None:
    """`gaps --kind aggTrades` lists the aggregate gaps only, `--verify --kind aggTrades`
    checks the stored aggregate ids (exit 1 on an unaccounted hole) and names them aggregate
    trades, and an empty list says what checks the aggregate ids. (`--repair --kind
    aggTrades`: tests/test_agg_repair.py.)"""
    with psycopg.connect(database_url) as conn:
        _store_aggs(conn, [1, 2, 3, 6, 7], Market.USDM)
        record_gaps(conn, "BTCUSDT", [(4, 4)], "hole", market=Market.USDM, kind=AGG)
        record_gaps(conn, "BTCUSDT", [(900, 901)], "open", market=Market.USDM)
    base = ("--database-url", database_url, "gaps", "--market", "usdm")
    listed = run_binprice(*base, "--kind", "aggTrades", "--json", env=clean_env)
    assert listed.returncode == 0, listed.stderr
    assert [(g["first_id"], g["last_id"]) for g in json.loads(listed.stdout)] == [(4, 4)]
    checked = run_binprice(*base, "--kind", "aggTrades", "--verify", "--json", env=clean_env)
    assert checked.returncode == 1, checked.stderr
    (symbol,) = json.loads(checked.stdout)["symbols"]
    assert symbol["unaccounted"] == 1 and symbol["trades"] == 5
    text = run_binprice(*base, "--kind", "aggTrades", "--verify", env=clean_env)
    assert text.returncode == 1, text.stderr
    assert "BTCUSDT: NOT OK: 5 aggregate trades, ids 1..7" in text.stdout, text.stdout
    assert "unaccounted: BTCUSDT 5..5 (1 ids)" in text.stdout, text.stdout
    empty = run_binprice(*base, "--kind", "aggTrades", "ETHUSDT", env=clean_env)
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr.startswith("no gaps of aggregate ids recorded"), empty.stderr
    assert "binprice gaps --verify --kind aggTrades" in empty.stderr, empty.stderr


async def test_ingest_stream_aggtrade_on_the_command_line(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """`binprice ingest --stream aggTrade --max-trades 200` stores 200 aggregates of the USD-M
    exchange and no trade; `gaps --verify --kind aggTrades` is ok afterwards."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(("BTCUSDT",), seed=44, rate=500, market=Market.USDM) as ex:
        code, out, err = await binprice_async(
            env,
            *("--database-url", database_url, "ingest", "BTCUSDT", "--market", "usdm"),
            *("--stream", "aggTrade", "--max-trades", "200", "--log-format", "plain"),
            *("--ws-url", ex.ws_url, "--rest-url", ex.rest_url),
        )
    assert code == 0, out + err
    with psycopg.connect(database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM agg_trades WHERE market = 1), "
            "(SELECT count(*) FROM trades)"
        ).fetchone()
    assert counts is not None and counts[0] >= 200 and counts[1] == 0
    code, out, err = await binprice_async(
        env,
        *("--database-url", database_url, "gaps", "--market", "usdm", "--kind", "aggTrades"),
        *("--verify", "--json"),
    )
    assert code == 0, out + err
    assert json.loads(out)["ok"] is True


def test_stream_option_chooses_the_kind_and_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    """`stream="aggTrade"` (any case) captures aggregate trades, `trade` trades; an unknown
    stream is refused before anything is touched, in one line that says what to do; `--since`
    goes with aggregates (tests/test_agg_since.py)."""
    from binprice import ConfigError, IngestOptions
    from binprice.ingest.from_options import ingest_config

    assert ingest_config(tmp_path, ["BTCUSDT"], IngestOptions(stream="aggtrade")).kind is AGG
    assert ingest_config(tmp_path, ["BTCUSDT"]).kind is TradeKind.TRADES
    with pytest.raises(ConfigError, match="unknown --stream 'depth'; choose trade or aggTrade"):
        ingest_config(tmp_path, ["BTCUSDT"], IngestOptions(stream="depth"))
    since = IngestOptions(stream="aggTrade", since="2025-01-01")
    assert ingest_config(tmp_path, ["BTCUSDT"], since).kind is AGG


async def test_a_trade_capture_and_an_aggregate_capture_of_one_symbol_are_not_shared(
    database_url: str,
) -> None:
    """The symbol claims of a run are per kind: a trade run and an aggregate run of BTCUSDT
    are two series (no "another ingest is capturing" warning), two aggregate runs are one."""
    from binprice.db import connect_async
    from binprice.db.claims import claim_symbols

    trades, aggs, again = [await connect_async(database_url) for _ in range(3)]
    try:
        assert await claim_symbols(trades, ["BTCUSDT"]) == []
        assert await claim_symbols(aggs, ["BTCUSDT"], kind=AGG) == []
        assert await claim_symbols(again, ["BTCUSDT"], kind=AGG) == ["BTCUSDT"]
        assert await claim_symbols(again, ["BTCUSDT"], Market.USDM, AGG) == []
    finally:
        for conn in (trades, aggs, again):
            await conn.close()
