"""Migration 0013: aggregate trades get their own table, and the completeness tables a kind."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from binprice.db import migrations
from binprice.db.schema import SCHEMA_HEAD
from binprice.kinds import TradeKind, kind_of_number, parse_kind

BEFORE = "0012_market"
KEYED = {
    "gaps": "PRIMARY KEY (market, kind, symbol, first_id, last_id)",
    "checkpoints": "PRIMARY KEY (market, kind, symbol)",
    "imports": "PRIMARY KEY (market, name)",
    "agg_trades": "PRIMARY KEY (market, symbol, agg_id)",
}
AGG_ROW = (
    "INSERT INTO agg_trades (symbol, agg_id, price, quantity, first_trade_id, last_trade_id, "
    "timestamp, is_buyer_maker, market) VALUES "
    "('BTCUSDT', 7, 100.5, 0.25, 10, 12, '2026-01-01 00:00:01.5+00', true, 1)"
)


def _fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_kinds_have_one_stored_number_each() -> None:
    assert [k.number for k in TradeKind] == [0, 1]
    assert [kind_of_number(k.number) for k in TradeKind] == list(TradeKind)
    assert parse_kind("AggTrades") is TradeKind.AGG_TRADES
    assert parse_kind("aggTrade") is TradeKind.AGG_TRADES
    assert parse_kind("trades") is TradeKind.TRADES
    assert TradeKind.AGG_TRADES.stream == "aggTrade"


def test_upgrade_from_0012_keeps_every_row_of_trades(empty_database_url: str) -> None:
    """A gap, a checkpoint and an import written at 0012 read back unchanged, of kind 0
    (trades), under keys that hold the kind; an aggregate trade stores exactly."""
    url = empty_database_url
    migrations.upgrade(url, BEFORE)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO gaps (symbol, first_id, last_id, state) VALUES ('BTCUSDT', 6, 9, 'hole')"
        )
        conn.execute("INSERT INTO checkpoints (symbol, verified_through) VALUES ('BTCUSDT', 5)")
        conn.execute(
            "INSERT INTO imports (name, symbol, period_start, period_end, sha256, state, rows, "
            "inserted, first_id, last_id, source) VALUES ('BTCUSDT-trades-2026-01-01.zip', "
            "'BTCUSDT', '2026-01-01', '2026-01-02', 'ab', 'done', 5, 5, 1, 5, 'x')"
        )
    others = {t: _fetch(url, f"SELECT * FROM {t}") for t in ("gaps", "checkpoints", "imports")}

    migrations.upgrade(url, "head")

    for table, rows in others.items():
        assert _fetch(url, f"SELECT * FROM {table}") == [(*r, 0) for r in rows]
    with psycopg.connect(url) as conn:
        keys = conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'p' AND conrelid::regclass::text = ANY(%s)",
            (list(KEYED),),
        ).fetchall()
        conn.execute(AGG_ROW)
        # The same range of ids is a different gap in each kind.
        conn.execute(
            "INSERT INTO gaps (symbol, first_id, last_id, state, kind) "
            "VALUES ('BTCUSDT', 6, 9, 'open', 1)"
        )
    assert dict(keys) == KEYED
    assert _fetch(url, "SELECT price::text, quantity::text, timestamp::text FROM agg_trades") == [
        ("100.5", "0.25", "2026-01-01 00:00:01.5+00")
    ]
    assert _fetch(url, "SELECT kind, state FROM gaps ORDER BY kind") == [(0, "hole"), (1, "open")]


def test_downgrade_refuses_aggregate_trades_and_goes_back_without_them(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    migrations.upgrade(url, "head")
    with psycopg.connect(url) as conn:
        conn.execute(AGG_ROW)
    with pytest.raises(Exception, match="aggregate trades"):
        migrations.downgrade(url, BEFORE)
    assert _fetch(url, "SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM agg_trades")
    migrations.downgrade(url, BEFORE)
    assert _fetch(url, "SELECT to_regclass('agg_trades')") == [(None,)]
    migrations.upgrade(url, "head")
