"""Symbols as binprice takes them from users: one normaliser, the defaults, Binance's limits."""

from __future__ import annotations

import re
from collections.abc import Iterable

from binprice.errors import UsageError

#: What `binprice ingest` captures when no symbol is given.
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT")
#: Binance closes a connection (1008) that carries more streams than this.
MAX_STREAMS_PER_CONNECTION = 1024
#: Binance symbols are ASCII letters and digits; the futures' dated contracts and COIN-M's
#: perpetuals add one `_` and a suffix (`BTCUSDT_250328`, `BTCUSD_PERP`, docs/futures.md §5).
#: The REST rule also admits "-." but no symbol uses them; refusing them catches BTC-USDT,
#: another venue's spelling, at once.
_SYMBOL = re.compile(r"(?=.{1,20}$)[A-Z0-9]+(?:_[A-Z0-9]+)?")


def normalize_symbols(
    symbols: str | Iterable[str], *, what: str = "symbol", example: str = "BTCUSDT"
) -> tuple[str, ...]:
    """Upper-cased, de-duplicated, in the order given; `"a,b c"` strings are split (the
    environment's form). Raises UsageError naming a symbol Binance could never know."""
    if isinstance(symbols, str):
        symbols = [symbols]
    out: dict[str, None] = {}
    for raw in symbols:
        for part in raw.replace(",", " ").split():
            symbol = part.upper()
            if not _SYMBOL.fullmatch(symbol):
                raise UsageError(
                    f"invalid {what} {part!r}: Binance {what}s are 1-20 letters A-Z and digits "
                    f"(futures contracts with one _), e.g. {example}"
                )
            out.setdefault(symbol)
    return tuple(out)


def normalize_assets(assets: str | Iterable[str]) -> tuple[str, ...]:
    """Quote assets for `--quote` (`USDT`, `btc`), checked as symbols are."""
    return normalize_symbols(assets, what="asset", example="USDT")
