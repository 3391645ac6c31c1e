"""The test archive's content: deterministic trades for past UTC days, as Binance's zips.

An :class:`ArchiveMarket` holds, per symbol, a record of trades in time order: either made by
the test exchange's :class:`TradeGenerator` (the same ids and prices as the exchange; times
spread evenly over each historical day) or given (e.g. what a live test exchange produced).
:func:`write_zip` writes a period of it the way data.binance.vision does: one CSV member named
like the zip, no header, ``id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch``, booleans
``True``/``False``, times in milliseconds before 2025-01-01 and in microseconds from then on.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import IO, Protocol

from binprice.exchange.protocol import WireTrade
from binprice.history._archive import ArchiveFile, Period, checksum_text, daily, monthly
from binprice.markets import Market
from binprice.testing.generator import TradeGenerator, symbol_spec
from binprice.testing.timeline import day_spec, produce_day

DAY_MS = 86_400_000
#: Binance's spot files carry microseconds from this day on.
MICROS_FROM = date(2025, 1, 1)
_QUOTE_STEP = Decimal("0.00000001")
#: The zip entry's timestamp; a republished file gets a later one, hence a new checksum.
_ZIP_TIME = (2025, 1, 1, 0, 0, 0)


class TradeRecord(Protocol):
    """A symbol's trades by index, in time order (TradeGenerator satisfies it)."""

    def __len__(self) -> int: ...

    def trade(self, index: int) -> WireTrade: ...


@dataclass(frozen=True, slots=True)
class _ListRecord:
    trades: Sequence[WireTrade]

    def __len__(self) -> int:
        return len(self.trades)

    def trade(self, index: int) -> WireTrade:
        return self.trades[index]


def day_ms(day: date) -> int:
    """Epoch ms of a UTC midnight."""
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)


def sub_millisecond(trade_id: int) -> int:
    """The microseconds a µs file adds below a trade's millisecond: deterministic, and up to
    999 so that rounding instead of flooring would land on the next millisecond."""
    return (trade_id * 7919) % 1000


@dataclass(slots=True)
class ArchiveMarket:
    """Per symbol, the trades the archive's files are cut from."""

    records: dict[str, TradeRecord]
    start: date
    end: date
    generators: dict[str, TradeGenerator] = field(default_factory=dict)
    #: The market the files are of: `data/spot/...`, `data/futures/um/...`, `.../cm/...`.
    market: Market = Market.SPOT

    @classmethod
    def generate(
        cls,
        symbols: Iterable[str],
        start: date,
        end: date,
        *,
        seed: int = 0,
        trades_per_day: int = 20,
        market: Market = Market.SPOT,
    ) -> ArchiveMarket:
        """Days ``start <= day < end`` of the exchange's deterministic market, ``trades_per_day``
        each: the ids and trades of a day are the same whatever ``start`` is
        (testing/timeline.py)."""
        generators: dict[str, TradeGenerator] = {}
        for symbol in symbols:
            base_spec = symbol_spec(symbol.upper(), market)
            gen = TradeGenerator(
                symbol, seed, spec=day_spec(base_spec, start, trades_per_day), market=market
            )
            day = start
            while day < end:
                produce_day(gen, base_spec, day, trades_per_day)
                day += timedelta(days=1)
            generators[gen.symbol] = gen
        records: dict[str, TradeRecord] = dict(generators)
        return cls(records, start, end, generators, market)

    @classmethod
    def from_trades(cls, trades: dict[str, Sequence[WireTrade]]) -> ArchiveMarket:
        """An archive of given trades (each symbol's in id order), over the days they span."""
        times = [t.time_ms for ts in trades.values() for t in ts]
        first = datetime.fromtimestamp(min(times) / 1000, UTC).date()
        last = datetime.fromtimestamp(max(times) / 1000, UTC).date()
        records: dict[str, TradeRecord] = {s: _ListRecord(ts) for s, ts in trades.items()}
        return cls(records, first, last + timedelta(days=1))

    def files(self, symbol: str) -> list[ArchiveFile]:
        """Every file the archive has for ``symbol``: each whole month and each day."""
        out: list[ArchiveFile] = []
        day = self.start
        while day < self.end:
            month = monthly(symbol, day.year, day.month)
            if month.start >= self.start and month.end <= self.end and day == month.start:
                out.append(month)
            out.append(daily(symbol, day))
            day += timedelta(days=1)
        return out

    def indexes(self, file: ArchiveFile) -> range:
        """Indexes of the record the file holds."""
        record = self.records[file.symbol]
        lo = _first_at(record, day_ms(file.start))
        hi = _first_at(record, day_ms(file.end))
        return range(lo, hi)

    def trades(self, file: ArchiveFile) -> Iterator[WireTrade]:
        record = self.records[file.symbol]
        for i in self.indexes(file):
            yield record.trade(i)


def _first_at(record: TradeRecord, time_ms: int) -> int:
    """Index of the first trade at or after ``time_ms`` (times never decrease)."""
    return bisect.bisect_left(range(len(record)), time_ms, key=lambda i: record.trade(i).time_ms)


def csv_line(trade: WireTrade, micros: bool) -> str:
    """One line as Binance writes it."""
    quote = (trade.price * trade.quantity).quantize(_QUOTE_STEP, rounding=ROUND_DOWN)
    stamp = trade.time_ms * 1000 + sub_millisecond(trade.trade_id) if micros else trade.time_ms
    maker = "True" if trade.is_buyer_maker else "False"
    return f"{trade.trade_id},{trade.price:f},{trade.quantity:f},{quote:f},{stamp},{maker},True\n"


def write_zip(
    out: IO[bytes],
    file: ArchiveFile,
    trades: Iterable[WireTrade],
    *,
    micros_from: date = MICROS_FROM,
    version: int = 0,
    lines: dict[int, str] | None = None,
) -> None:
    """Write ``file``'s zip to ``out``, streaming (a big file never sits in memory).

    ``lines`` replaces the line at a 0-based index (a malformed-line fault).
    """
    micros = file.start >= micros_from
    info = zipfile.ZipInfo(file.name.removesuffix(".zip") + ".csv", _zip_time(version))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w") as archive, archive.open(info, "w", force_zip64=True) as csv:
        buffer: list[str] = []
        for index, trade in enumerate(trades):
            line = csv_line(trade, micros)
            if lines is not None and index in lines:
                line = lines[index]
            buffer.append(line)
            if len(buffer) >= 10_000:
                csv.write("".join(buffer).encode())
                buffer.clear()
        csv.write("".join(buffer).encode())


def _zip_time(version: int) -> tuple[int, int, int, int, int, int]:
    year, month, day, hour, minute, second = _ZIP_TIME
    return (year, month, day, hour, minute + version, second)


def zip_bytes(file: ArchiveFile, trades: Iterable[WireTrade], **kw: object) -> bytes:
    out = io.BytesIO()
    write_zip(out, file, trades, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def lines_zip(name: str, lines: Iterable[str], *, version: int = 0) -> bytes:
    """The bytes of a zip named ``name`` whose one CSV member holds ``lines``."""
    out = io.BytesIO()
    info = zipfile.ZipInfo(name.removesuffix(".zip") + ".csv", _zip_time(version))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w") as archive, archive.open(info, "w", force_zip64=True) as csv:
        csv.write("".join(lines).encode())
    return out.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_csv_zip(path: Path, csv_chunks: Iterable[bytes]) -> Path:
    """Write a zip named ``path`` whose one CSV member is ``csv_chunks`` verbatim (streamed, so
    a huge or degenerate CSV, a zip bomb, never sits in memory), with its CHECKSUM beside it.
    ``path``'s name must be an archive file name; returns ``path``."""
    info = zipfile.ZipInfo(path.name.removesuffix(".zip") + ".csv", _zip_time(0))
    info.compress_type = zipfile.ZIP_DEFLATED
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive, archive.open(info, "w", force_zip64=True) as csv:
        for chunk in csv_chunks:
            csv.write(chunk)
    digest = hashlib.sha256()
    with path.open("rb") as written:
        while chunk := written.read(1 << 20):
            digest.update(chunk)
    path.with_name(path.name + ".CHECKSUM").write_text(checksum_text(digest.hexdigest(), path.name))
    return path


def write_tree(market: ArchiveMarket, folder: Path, *, flat: bool = False) -> list[Path]:
    """Write every file of ``market`` with its CHECKSUM below ``folder``, in the archive's
    layout (``data/spot/...``) or flat; return the zips' paths."""
    paths = []
    for symbol in market.records:
        for file in market.files(symbol):
            path = folder / (file.name if flat else file.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with path.open("w+b") as out:
                write_zip(out, file, market.trades(file))
                out.seek(0)
                while chunk := out.read(1 << 20):
                    digest.update(chunk)
            path.with_name(path.name + ".CHECKSUM").write_text(
                checksum_text(digest.hexdigest(), file.name)
            )
            paths.append(path)
    return paths


__all__ = [
    "DAY_MS",
    "MICROS_FROM",
    "ArchiveMarket",
    "Period",
    "TradeRecord",
    "csv_line",
    "day_ms",
    "lines_zip",
    "sha256_hex",
    "sub_millisecond",
    "write_csv_zip",
    "write_tree",
    "write_zip",
    "zip_bytes",
]
