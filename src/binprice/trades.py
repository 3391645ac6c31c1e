"""`store.trades(...)`: every trade of a window, streamed, and as exact data frames.

Iterating reads the window through a server-side cursor in batches (constant memory).
`to_arrow()` (the `pandas`, `polars` or `parquet` extra, which bring pyarrow) builds an Arrow
table whose price and quantity are `decimal128` with the scale of the most precise value in the
window, so no price is ever rounded; `to_pandas()` keeps them as pandas' Arrow decimal dtype and
`to_polars()` as polars `Decimal`. Never through float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from binprice.errors import MissingExtraError
from binprice.export import COLUMNS, Trade, decimal_types, trades
from binprice.markets import DEFAULT_MARKET, Market

if TYPE_CHECKING:
    import psycopg

#: Returns the open read connection (the store's; reopened by it if it was closed).
Connect = Callable[[], "psycopg.Connection[Any]"]


def _require(feature: str, module: str, *also: str) -> Any:
    """`module`, imported; MissingExtraError naming every one of `module, *also` not installed."""
    import importlib.util

    missing = tuple(name for name in (module, *also) if importlib.util.find_spec(name) is None)
    if missing:
        raise MissingExtraError(feature, missing)
    return importlib.import_module(module)


class Trades:
    """The trades of one symbol in `[start, end)`, in time order. Iterate, or convert."""

    def __init__(
        self,
        connect: Connect,
        symbol: str,
        start: datetime,
        end: datetime,
        market: Market = DEFAULT_MARKET,
    ) -> None:
        self._connect = connect
        self.symbol = symbol
        self.start = start
        self.end = end
        self.market = market

    def __iter__(self) -> Iterator[Trade]:
        return trades(self._connect(), self.symbol, self.start, self.end, self.market)

    def to_arrow(self) -> Any:
        """A pyarrow Table with the trade columns; decimals exact."""
        pa = _require("to_arrow()", "pyarrow")
        conn = self._connect()
        (price_p, price_s), (qty_p, qty_s) = decimal_types(
            conn, [self.symbol], self.start, self.end, self.market
        )
        columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        for trade in self:
            for name in COLUMNS:
                columns[name].append(getattr(trade, name))
        schema = pa.schema(
            [
                ("symbol", pa.string()),
                ("trade_id", pa.int64()),
                ("price", pa.decimal128(price_p, price_s)),
                ("quantity", pa.decimal128(qty_p, qty_s)),
                ("timestamp", pa.timestamp("ms", tz="UTC")),
                ("is_buyer_maker", pa.bool_()),
            ]
        )
        return pa.Table.from_pydict(columns, schema=schema)

    def to_pandas(self) -> Any:
        """A pandas DataFrame; price and quantity keep pandas' Arrow decimal dtype (exact)."""
        pd = _require("to_pandas()", "pandas", "pyarrow")
        return self.to_arrow().to_pandas(types_mapper=pd.ArrowDtype)

    def to_polars(self) -> Any:
        """A polars DataFrame; price and quantity are polars `Decimal` (exact)."""
        pl = _require("to_polars()", "polars", "pyarrow")
        return pl.from_arrow(self.to_arrow())
