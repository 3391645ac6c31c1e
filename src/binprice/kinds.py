"""What a series holds: Binance's trades, or its aggregate trades (docs/futures.md).

A symbol of a market has two id series on Binance: its trades (`@trade`, `historicalTrades`,
the archives' `trades` files) and its aggregate trades (`@aggTrade`, `aggTrades`, the
`aggTrades` files), which merge the trades of one taker order at one price. Their ids are
different numbers, so the completeness tables (`gaps`, `checkpoints`) and `imports` carry the
kind next to the market (migration 0013); the aggregates live in `agg_trades`.
"""

from __future__ import annotations

from enum import StrEnum

from binprice.errors import ConfigError


class TradeKind(StrEnum):
    """A kind of series; the value is what `--kind` takes (Binance's own spelling)."""

    TRADES = "trades"
    AGG_TRADES = "aggTrades"

    @property
    def number(self) -> int:
        """The kind as stored: the `kind` smallint of `gaps`, `checkpoints` and `imports`."""
        return _NUMBERS[self]

    @property
    def stream(self) -> str:
        """The WebSocket stream of the kind, as `ingest --stream` takes it."""
        return _STREAMS[self]

    @property
    def label(self) -> str:
        """How messages name one of the kind's records."""
        return _LABELS[self]


#: The one mapping of kinds to their stored numbers (migration 0013: existing rows are 0).
_NUMBERS = {TradeKind.TRADES: 0, TradeKind.AGG_TRADES: 1}
_BY_NUMBER = {number: kind for kind, number in _NUMBERS.items()}
_STREAMS = {TradeKind.TRADES: "trade", TradeKind.AGG_TRADES: "aggTrade"}
_LABELS = {TradeKind.TRADES: "trade", TradeKind.AGG_TRADES: "aggregate trade"}
#: Every spelling `parse_kind` takes, lower-cased.
_SPELLINGS = {
    "trades": TradeKind.TRADES,
    "trade": TradeKind.TRADES,
    "aggtrades": TradeKind.AGG_TRADES,
    "aggtrade": TradeKind.AGG_TRADES,
    "agg": TradeKind.AGG_TRADES,
}

DEFAULT_KIND = TradeKind.TRADES
#: An aggregate trade's fields as binprice writes them (`--json`, csv and ndjson exports):
#: the names of Binance's aggTrades archive header, the symbol first.
AGG_FIELD_NAMES = (
    "symbol",
    "agg_trade_id",
    "price",
    "quantity",
    "first_trade_id",
    "last_trade_id",
    "transact_time",
    "is_buyer_maker",
)


def kind_of_number(number: int) -> TradeKind:
    """The kind a stored `kind` number stands for."""
    return _BY_NUMBER[number]


def parse_kind(text: str | TradeKind) -> TradeKind:
    """``"aggTrades"`` (or ``aggTrade``, ``agg``; any case) → ``TradeKind.AGG_TRADES``."""
    if isinstance(text, TradeKind):
        return text
    kind = _SPELLINGS.get(text.strip().lower())
    if kind is None:
        raise ConfigError(f"unknown kind {text!r}; choose trades or aggTrades")
    return kind


__all__ = ["AGG_FIELD_NAMES", "DEFAULT_KIND", "TradeKind", "kind_of_number", "parse_kind"]
