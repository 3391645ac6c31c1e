"""A user's script against the public API, type-checked by tests/test_api.py (mypy --strict)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import binprice


def report(url: str) -> list[str]:
    lines: list[str] = []
    with binprice.connect(url) as store:
        for latest in store.latest(["BTCUSDT"]):
            price: Decimal = latest.price
            when: datetime = latest.timestamp
            lines.append(f"{latest.symbol} {price} at {when.isoformat()} #{latest.trade_id}")
        nearest: list[binprice.At] = store.at(datetime(2026, 1, 1), "BTCUSDT", within="1m")
        lines += [f"{a.symbol} {a.offset_ms} ms from {a.requested}" for a in nearest]
        summary: list[binprice.Range] = store.range(datetime.now() - timedelta(hours=1), None)
        lines += [f"{r.symbol} high {r.high} at {r.high_at} vwap {r.vwap}" for r in summary]
        candles: list[binprice.Candle] = store.candles("BTCUSDT", "1h", "1d ago")
        lines += [f"{c.open_time} {c.open} {c.close}" for c in candles]
        trade: binprice.Trade
        for trade in store.trades("BTCUSDT", "5m ago"):
            lines.append(f"{trade.trade_id} {trade.quantity}")
        check: binprice.Verification = store.verify()
        lines.append("ok" if check.ok else "holes")
    return lines


try:
    report("postgresql://nobody@127.0.0.1:1/none")
except binprice.BinpriceError as exc:
    print(f"error: {exc}")
