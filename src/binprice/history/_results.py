"""What an import reports while it runs (events, progress) and returns (results). Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from binprice.events import EventKind, Severity
from binprice.kinds import TradeKind


@dataclass(frozen=True, slots=True)
class ImportEvent:
    """One thing worth a log line; `file` is the archive file name when it is about one."""

    kind: EventKind
    symbol: str
    message: str
    file: str | None = None
    #: For PLANNED: files planned so far for the symbol; for LOADED: the file's result.
    files: int = 0
    result: FileResult | None = None

    @property
    def severity(self) -> Severity:
        return self.kind.severity


@dataclass(frozen=True, slots=True)
class FileProgress:
    """A file being loaded: reported after every block (about 14,000 trades)."""

    symbol: str
    file: str
    rows: int
    csv_bytes: int
    csv_total: int


class FileStatus(Enum):
    LOADED = "loaded"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    #: A stop came before any of it was stored; the next run imports it.
    NOT_LOADED = "not_loaded"
    REFUSED = "refused"
    MISSING = "missing"
    NOT_PUBLISHED = "not_published"
    NOT_ARCHIVED = "not_archived"

    @property
    def failed(self) -> bool:
        return self in (FileStatus.REFUSED, FileStatus.MISSING)


@dataclass(frozen=True, slots=True)
class FileResult:
    """What became of one archive file."""

    symbol: str
    name: str
    start: date
    end: date
    status: FileStatus
    reason: str = ""
    #: Trades of the file stored (all runs) and new to the table (all runs).
    rows: int = 0
    inserted: int = 0
    first_id: int | None = None
    last_id: int | None = None
    #: CSV bytes decoded and seconds spent loading in this run.
    csv_bytes: int = 0
    seconds: float = 0.0
    republished: bool = False
    #: The last id an earlier run had committed, if this run resumed the file.
    resumed_after: int | None = None
    #: Whose rows the file holds: trades, or aggregate trades (ids are aggregate ids).
    kind: TradeKind = TradeKind.TRADES


@dataclass(frozen=True, slots=True)
class GapResult:
    """A range of ids found missing and recorded in `gaps` (state open, hole or skipped)."""

    first_id: int
    last_id: int
    state: str


@dataclass(frozen=True, slots=True)
class SymbolResult:
    """One symbol's import."""

    symbol: str
    files: tuple[FileResult, ...]
    #: The highest stored trade id after the import (archive and REST tail), None if none.
    last_trade_id: int | None
    rest_trades: int = 0
    gaps: tuple[GapResult, ...] = ()
    #: Whose ids `last_trade_id` and the gaps are: trades, or aggregate trades.
    kind: TradeKind = TradeKind.TRADES

    @property
    def failed(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.status.failed)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """The whole run: per symbol, and whether it was stopped before the end."""

    symbols: tuple[SymbolResult, ...]
    elapsed: float
    stopped: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """No file refused or missing (unpublished days and a stop are not failures)."""
        return not any(s.failed for s in self.symbols)

    @property
    def failed(self) -> tuple[FileResult, ...]:
        return tuple(f for s in self.symbols for f in s.failed)

    @property
    def not_loaded(self) -> tuple[FileResult, ...]:
        """Files a stop left for the next run, none of their trades stored."""
        return tuple(f for s in self.symbols for f in s.files if f.status is FileStatus.NOT_LOADED)

    @property
    def last_trade_ids(self) -> dict[str, int]:
        """Per symbol, the highest stored id: where live capture continues."""
        return {s.symbol: s.last_trade_id for s in self.symbols if s.last_trade_id is not None}


# --- messages (one line each, naming the file) ---------------------------------------------

_WHY = {
    FileStatus.MISSING: "missing from the archive",
    FileStatus.NOT_PUBLISHED: "not published yet",
    FileStatus.NOT_ARCHIVED: "not in the archive",
}


def file_event_of(kind: EventKind, result: FileResult, message: str) -> ImportEvent:
    return ImportEvent(kind, result.symbol, message, file=result.name, result=result)


def file_event(r: FileResult) -> ImportEvent:
    if r.status is FileStatus.REFUSED:
        return file_event_of(EventKind.REFUSED, r, f"{r.name}: refused: {r.reason}")
    if r.status is FileStatus.NOT_LOADED:
        return file_event_of(
            EventKind.NOT_LOADED,
            r,
            f"{r.name}: not loaded: {r.reason}; the next run imports it",
        )
    if r.status is FileStatus.INTERRUPTED:
        return file_event_of(
            EventKind.INTERRUPTED,
            r,
            f"{r.name}: interrupted after {r.kind.label} id {r.last_id} ({r.rows:,} "
            f"{r.kind.label}s stored); "
            "the next run resumes there",
        )
    rate = r.rows / r.seconds if r.seconds > 0 else 0.0
    ids = "" if r.first_id is None else f", ids {r.first_id}..{r.last_id}"
    return file_event_of(
        EventKind.LOADED,
        r,
        f"{r.name}: {r.rows:,} {r.kind.label}s ({r.inserted:,} new){ids} in {r.seconds:.1f} s "
        f"({rate:,.0f}/s, {r.csv_bytes / 1e6 / max(r.seconds, 1e-9):.1f} MB/s)",
    )


def unavailable_event(run: list[FileResult]) -> ImportEvent:
    status = run[0].status
    kind = {
        FileStatus.MISSING: EventKind.MISSING,
        FileStatus.NOT_PUBLISHED: EventKind.NOT_PUBLISHED,
        FileStatus.NOT_ARCHIVED: EventKind.NOT_ARCHIVED,
    }[status]
    days = f"{run[0].start}" + ("" if len(run) == 1 else f" to {run[-1].end - timedelta(days=1)}")
    names = run[0].name if len(run) == 1 else f"{run[0].name} .. {run[-1].name}"
    return ImportEvent(kind, run[0].symbol, f"{run[0].symbol} {days}: {_WHY[status]} ({names})")


def symbol_text(s: SymbolResult) -> str:
    counts: dict[str, int] = {}
    for f in s.files:
        counts[f.status.value] = counts.get(f.status.value, 0) + 1
    parts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items())
    tail = f", {s.rest_trades:,} trades from REST" if s.rest_trades else ""
    noun = s.kind.label
    last = f"no {noun}s stored" if s.last_trade_id is None else f"last {noun} id {s.last_trade_id}"
    return f"{s.symbol}: {parts or 'no files'}{tail}; {last}"
