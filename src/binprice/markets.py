"""Binance's markets: Spot, USD-M futures and COIN-M futures (docs/futures.md).

One trade series is a symbol *in a market*: BTCUSDT on Spot and the BTCUSDT USD-M perpetual are
different series that never answer for each other. This module only names the markets; what
differs between them on the wire lives in `binprice.exchange.endpoints` (URLs, paths, weights,
limits) and `binprice.exchange.protocol` (frames).
"""

from __future__ import annotations

from enum import StrEnum

from binprice.errors import ConfigError


class Market(StrEnum):
    """A Binance market; the value is what `--market` and `BINPRICE_MARKET` take."""

    SPOT = "spot"
    #: USDⓈ-margined futures: perpetuals and quarterly contracts settled in USDT/USDC
    #: (fstream/fapi).
    USDM = "usdm"
    #: Coin-margined futures: contracts settled in the base coin, quantities in contracts
    #: (dstream/dapi).
    COINM = "coinm"

    @property
    def is_futures(self) -> bool:
        return self is not Market.SPOT

    @property
    def label(self) -> str:
        """How the docs and messages name the market."""
        return _TITLES[self]

    @property
    def number(self) -> int:
        """The market as stored: the `market` smallint of every table that keys by symbol."""
        return _NUMBERS[self]


_TITLES = {Market.SPOT: "Spot", Market.USDM: "USD-M futures", Market.COINM: "COIN-M futures"}
#: The one mapping of markets to their stored numbers (migrations 0010 and 0012 use the same:
#: existing rows are 0, spot). A number is never reused for another market.
_NUMBERS = {Market.SPOT: 0, Market.USDM: 1, Market.COINM: 2}
_BY_NUMBER = {number: market for market, number in _NUMBERS.items()}

DEFAULT_MARKET = Market.SPOT


def market_of_number(number: int) -> Market:
    """The market a stored `market` number stands for."""
    return _BY_NUMBER[number]


def parse_market(text: str | Market) -> Market:
    """``"usdm"`` → ``Market.USDM``; a clear ConfigError for anything else."""
    if isinstance(text, Market):
        return text
    try:
        return Market(text.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in Market)
        raise ConfigError(f"unknown market {text!r}; choose one of {choices}") from None


__all__ = ["DEFAULT_MARKET", "Market", "market_of_number", "parse_market"]
