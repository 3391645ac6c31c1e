"""A window of one symbol's aggregate trades read out: ``COPY (SELECT … FROM agg_trades) TO
STDOUT`` in each format's columns (`binprice.export_agg` writes them).

The window is read through the index ``(market, symbol, "timestamp")`` in time order, ties
by aggregate id. Field names are those of Binance's futures aggTrades archive header
(``agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time,
is_buyer_maker``), the symbol first; times in csv and ndjson are ISO 8601 UTC with
milliseconds, as every binprice export prints them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from binprice.db.export import ISO_MS
from binprice.kinds import AGG_FIELD_NAMES
from binprice.markets import Market

#: The csv header and ndjson keys, in order.
AGG_EXPORT_COLUMNS = AGG_FIELD_NAMES
AGG_CSV_SELECT = (
    f"SELECT symbol, agg_id, price, quantity, first_trade_id, last_trade_id, {ISO_MS}, "
    "is_buyer_maker::text"
)
# As the trades' ndjson: built by the server; symbols and numeric text need no escaping.
_AGG_NDJSON_OBJECT = (
    '{"symbol":%%s,"agg_trade_id":%%s,"price":"%%s","quantity":"%%s","first_trade_id":%%s,'
    '"last_trade_id":%%s,"transact_time":"%%s","is_buyer_maker":%%s}'
)
AGG_NDJSON_SELECT = (
    f"SELECT format('{_AGG_NDJSON_OBJECT}', to_json(symbol), agg_id, price, quantity, "
    f"first_trade_id, last_trade_id, {ISO_MS}, is_buyer_maker::text)"
)
#: Spot's aggTrades files switched to microsecond times on this day, as its trades files.
SPOT_MICROSECONDS_FROM = datetime(2025, 1, 1, tzinfo=UTC)
#: Binance's spot aggTrades CSV: no header, `True`/`False`, `isBestMatch` (always `True`).
SPOT_BINANCE_SELECT = f"""SELECT agg_id, price, quantity, first_trade_id, last_trade_id,
       CASE WHEN timestamp >= '{SPOT_MICROSECONDS_FROM.isoformat()}'
            THEN (extract(epoch FROM timestamp) * 1000000)::bigint
            ELSE (extract(epoch FROM timestamp) * 1000)::bigint END,
       CASE WHEN is_buyer_maker THEN 'True' ELSE 'False' END, 'True'"""
#: Binance's futures aggTrades CSV (USD-M and COIN-M): `true`/`false`, times in ms.
FUTURES_BINANCE_SELECT = """SELECT agg_id, price, quantity, first_trade_id, last_trade_id,
       (extract(epoch FROM timestamp) * 1000)::bigint, is_buyer_maker::text"""
FUTURES_BINANCE_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
)


def binance_agg_select(market: Market) -> str:
    """The SELECT list of `market`'s aggTrades archive CSV."""
    return SPOT_BINANCE_SELECT if market is Market.SPOT else FUTURES_BINANCE_SELECT


#: Aggregate trades in export order (`db.export.copy_out(..., table=AGG_TABLE, order=AGG_ORDER)`).
AGG_TABLE = "agg_trades"
AGG_ORDER = "ORDER BY timestamp, agg_id"
