"""The layout of Binance's public trade archive (data.binance.vision): file names, URLs, plans.

Pure: no I/O. A trades file covers one UTC month or one UTC day of one symbol of a market::

    data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2024-01.zip
    data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-02-03.zip
    data/futures/um/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-01.zip      (USD-M)
    data/futures/cm/daily/trades/BTCUSD_PERP/BTCUSD_PERP-trades-2025-01-01.zip  (COIN-M)

and has a ``<name>.CHECKSUM`` beside it holding ``<sha256>  <name>`` (what ``sha256sum``
prints). Monthly files are published on the first Monday of the next month, daily ones the next
day, so a range is planned as monthly files for its whole months and daily files for the rest.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum

from binprice.errors import UsageError
from binprice.exchange.endpoints import market_api
from binprice.kinds import TradeKind
from binprice.markets import Market

DEFAULT_ARCHIVE_URL = "https://data.binance.vision"
CHECKSUM_SUFFIX = ".CHECKSUM"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_NAMES = {
    kind: re.compile(
        rf"(?P<symbol>[A-Z0-9]+(?:_[A-Z0-9]+)?)-{kind.value}-"
        r"(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?\.zip"
    )
    for kind in TradeKind
}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


class Period(Enum):
    """How much time one archive file covers."""

    MONTHLY = "monthly"
    DAILY = "daily"


@dataclass(frozen=True, slots=True, order=True)
class ArchiveFile:
    """One file of the archive: a symbol's trades (or aggregate trades: `kind`) in a market
    over one UTC month or day."""

    symbol: str
    start: date
    period: Period
    market: Market = Market.SPOT
    kind: TradeKind = TradeKind.TRADES

    @property
    def end(self) -> date:
        """The first day after the file (exclusive end)."""
        if self.period is Period.DAILY:
            return self.start + timedelta(days=1)
        return self.start + timedelta(days=monthrange(self.start.year, self.start.month)[1])

    @property
    def times(self) -> tuple[datetime, datetime]:
        """The file's period as aware UTC datetimes, `[start, end)`: its trades' times."""
        return _midnight(self.start), _midnight(self.end)

    @property
    def name(self) -> str:
        stamp = self.start.strftime("%Y-%m" if self.period is Period.MONTHLY else "%Y-%m-%d")
        return f"{self.symbol}-{self.kind.value}-{stamp}.zip"

    @property
    def path(self) -> str:
        """Path below the archive's base URL (and below a downloaded copy of it)."""
        folder = market_api(self.market).archive_folder  # spot, futures/um, futures/cm
        kind = self.kind.value
        return f"data/{folder}/{self.period.value}/{kind}/{self.symbol}/{self.name}"

    @property
    def checksum_path(self) -> str:
        return self.path + CHECKSUM_SUFFIX

    def days(self) -> list[date]:
        """The UTC days this file covers."""
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]

    def daily_files(self) -> list[ArchiveFile]:
        """The daily files covering the same days (what replaces a missing monthly file)."""
        return [
            ArchiveFile(self.symbol, d, Period.DAILY, self.market, self.kind) for d in self.days()
        ]


def monthly(
    symbol: str,
    year: int,
    month: int,
    market: Market = Market.SPOT,
    kind: TradeKind = TradeKind.TRADES,
) -> ArchiveFile:
    return ArchiveFile(symbol, date(year, month, 1), Period.MONTHLY, market, kind)


def daily(
    symbol: str, day: date, market: Market = Market.SPOT, kind: TradeKind = TradeKind.TRADES
) -> ArchiveFile:
    return ArchiveFile(symbol, day, Period.DAILY, market, kind)


def parse_name(
    name: str, market: Market = Market.SPOT, kind: TradeKind = TradeKind.TRADES
) -> ArchiveFile | None:
    """The file a Binance file name of `market` and `kind` stands for (``BTCUSDT-trades-…``,
    ``BTCUSDT-aggTrades-…``), or None if it is not one."""
    match = _NAMES[kind].fullmatch(name)
    if match is None:
        return None
    year, month = int(match["year"]), int(match["month"])
    try:
        if match["day"] is None:
            return monthly(match["symbol"], year, month, market, kind)
        return daily(match["symbol"], date(year, month, int(match["day"])), market, kind)
    except ValueError:  # month 13, February 30th
        return None


def plan(
    symbol: str,
    start: date,
    end: date,
    market: Market = Market.SPOT,
    kind: TradeKind = TradeKind.TRADES,
) -> list[ArchiveFile]:
    """Files covering the UTC days ``start <= day < end``: monthly for whole months, daily
    for the days before the first and after the last whole month."""
    if end <= start:
        raise UsageError(f"--end {end} must be after --start {start}")
    files: list[ArchiveFile] = []
    day = start
    while day < end:
        month = monthly(symbol, day.year, day.month, market, kind)
        if day.day == 1 and month.end <= end:
            files.append(month)
            day = month.end
        else:
            files.append(daily(symbol, day, market, kind))
            day += timedelta(days=1)
    return files


def parse_checksum(text: str, name: str) -> str:
    """The lower-case SHA-256 in a CHECKSUM file (``<sha256>  <name>``).

    Raises ValueError with the reason if the text is not a checksum of ``name``.
    """
    fields = text.split()
    if not fields or not _SHA256.fullmatch(fields[0]):
        raise ValueError(f"the CHECKSUM file does not start with a SHA-256: {text[:80]!r}")
    if len(fields) > 1 and fields[1].lstrip("*") != name:
        raise ValueError(f"the CHECKSUM file is for {fields[1]!r}, not {name!r}")
    return fields[0].lower()


def checksum_text(sha256: str, name: str) -> str:
    """A CHECKSUM file's content, as Binance (and ``sha256sum``) write it."""
    return f"{sha256}  {name}\n"
