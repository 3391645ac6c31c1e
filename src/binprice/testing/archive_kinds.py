"""The test archive's other files: aggregate trades, and the futures markets' trades and
aggregate trades, in data.binance.vision's layout and CSV dialects (docs/futures.md §6)::

    data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2025-01-01.zip
    data/futures/um/monthly/trades/BTCUSDT/BTCUSDT-trades-2024-12.zip
    data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2024-12-01.zip

How they differ from Spot's trades files (which `archive_files` writes):

- Spot aggTrades: no header, ``a,price,qty,f,l,time,isBuyerMaker,isBestMatch``, ``True``/``False``,
  times in µs from 2025-01-01.
- Futures: a header row (in files of :data:`FUTURES_HEADER_FROM` on), ``true``/``false``, times
  in ms, the market's short decimals; USD-M trades ``id,price,qty,quote_qty,time,
  is_buyer_maker``, COIN-M trades ``id,price,qty,base_qty,time,is_buyer_maker`` (``qty`` in
  contracts), aggTrades ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,
  transact_time,is_buyer_maker``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from binprice.exchange.endpoints import market_api
from binprice.history._archive import ArchiveFile, Period
from binprice.markets import Market
from binprice.testing.archive_files import MICROS_FROM, ArchiveMarket, sub_millisecond
from binprice.testing.generator import UNITS_PER_ONE, US_PER_MS, TradeGenerator, format_units

#: Futures files carry a header row from about this day on. The documentation is silent;
#: files of 2021 are quoted without one, those of 2022 on with one.
FUTURES_HEADER_FROM = date(2022, 1, 1)
KINDS = ("trades", "aggTrades")
_NAME = re.compile(
    r"(?P<symbol>[A-Z0-9_]+)-(?P<kind>trades|aggTrades)-(?P<year>\d{4})-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2}))?\.zip"
)
_FOLDERS = {market_api(m).archive_folder: m for m in Market}
HEADERS = {
    (Market.USDM, "trades"): "id,price,qty,quote_qty,time,is_buyer_maker",
    (Market.COINM, "trades"): "id,price,qty,base_qty,time,is_buyer_maker",
    (Market.USDM, "aggTrades"): (
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
    ),
}
HEADERS[Market.COINM, "aggTrades"] = HEADERS[Market.USDM, "aggTrades"]


@dataclass(frozen=True, slots=True)
class ArchivePath:
    """One file of any market and kind."""

    market: Market
    kind: str
    file: ArchiveFile

    @property
    def name(self) -> str:
        return self.file.name.replace("-trades-", f"-{self.kind}-")

    @property
    def path(self) -> str:
        folder = market_api(self.market).archive_folder
        return f"data/{folder}/{self.file.period.value}/{self.kind}/{self.file.symbol}/{self.name}"


def parse_path(path: str) -> ArchivePath | None:
    """``data/futures/um/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-01.zip`` → its file."""
    head, _, name = path.strip("/").rpartition("/")
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    year, month, day = int(match["year"]), int(match["month"]), match["day"]
    period = Period.DAILY if day else Period.MONTHLY
    try:
        start = date(year, month, int(day) if day else 1)
    except ValueError:
        return None
    for folder, market in _FOLDERS.items():
        found = ArchivePath(market, match["kind"], ArchiveFile(match["symbol"], start, period))
        if head == f"data/{folder}/{period.value}/{match['kind']}/{match['symbol']}":
            return found
    return None


def file_lines(
    market: ArchiveMarket,
    key: ArchivePath,
    *,
    micros_from: date = MICROS_FROM,
    header_from: date = FUTURES_HEADER_FROM,
) -> Iterator[str]:
    """The CSV lines of ``key`` (each ending in a newline), cut from the market's record;
    Spot's trades files are `archive_files.write_zip`'s."""
    if key.market is Market.SPOT and key.kind == "trades":
        raise ValueError("Spot trades files are written by archive_files.write_zip")
    generator = market.generators[key.file.symbol]
    indexes = market.indexes(key.file)
    futures = key.market is not Market.SPOT
    if futures and key.file.start >= header_from:
        yield HEADERS[key.market, key.kind] + "\n"
    micros = not futures and key.file.start >= micros_from
    if key.kind == "trades":
        for i in indexes:
            yield _futures_trade(generator, i, key.market) + "\n"
        return
    book = generator.aggregates
    if not indexes:
        return
    last = book.of_trade(indexes[-1])
    for agg in range(book.of_trade(indexes[0]), last + 1):
        yield _agg_line(generator, agg, futures=futures, micros=micros) + "\n"


def _bool(value: bool, *, futures: bool) -> str:
    text = "True" if value else "False"
    return text.lower() if futures else text


def _futures_trade(generator: TradeGenerator, index: int, market: Market) -> str:
    trade = generator.trade(index)
    price = generator.price_text(int(trade.price * UNITS_PER_ONE))
    qty = generator.qty_text(int(trade.quantity * UNITS_PER_ONE))
    if market is Market.COINM:
        extra = format_units(int(generator.base_quantity(index) * UNITS_PER_ONE))
    else:
        extra = f"{(trade.price * trade.quantity).normalize():f}"
    maker = _bool(trade.is_buyer_maker, futures=True)
    return f"{trade.trade_id},{price},{qty},{extra},{trade.time_ms},{maker}"


def _agg_line(generator: TradeGenerator, agg: int, *, futures: bool, micros: bool) -> str:
    a = generator.agg(agg)
    stamp = a.time_ms * US_PER_MS + sub_millisecond(a.first_trade_id) if micros else a.time_ms
    price = generator.price_text(int(a.price * UNITS_PER_ONE))
    qty = generator.qty_text(int(a.quantity * UNITS_PER_ONE))
    maker = _bool(a.is_buyer_maker, futures=futures)
    line = f"{a.agg_id},{price},{qty},{a.first_trade_id},{a.last_trade_id},{stamp},{maker}"
    return line if futures else line + ",True"


__all__ = ["FUTURES_HEADER_FROM", "HEADERS", "ArchivePath", "file_lines", "parse_path"]
