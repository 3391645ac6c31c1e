"""Helpers for ingest tests: read back what the database holds, compare with the exchange."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from binprice.binance import Trade
from binprice.ingest import IngestConfig
from binprice.testing.exchange import TestExchange

Row = tuple[str, int, Decimal, Decimal, int, bool]


def stored_rows(url: str) -> list[Row]:
    """Every stored trade as (symbol, id, price, qty, time_ms, is_buyer_maker), sorted."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, trade_id, price, quantity, timestamp, is_buyer_maker "
            "FROM trades ORDER BY symbol, trade_id"
        ).fetchall()
    return [
        (s, i, p, q, int(ts.astimezone(UTC).timestamp() * 1000 + 0.5), m)
        for s, i, p, q, ts, m in rows
    ]


def as_rows(trades: list[Trade]) -> list[Row]:
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
