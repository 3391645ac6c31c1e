"""What an import reports while it runs (events, progress) and returns (results). Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import Enum, IntEnum


class Severity(IntEnum):
    """How much an event matters; `-q` shows WARNING and above."""

    INFO = 20
    WARNING = 30
    ERROR = 40


class EventKind(Enum):
    """Everything worth a line. The value is the `event` key of the JSON lines."""

    PLANNED = "planned"
    SKIPPED = "skipped"
    REPUBLISHED = "republished"
    RESUMED = "resumed"
    LOADED = "loaded"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"
    MISSING = "missing"
    DAILY_INSTEAD = "daily_instead"
    NOT_PUBLISHED = "not_published"
    NOT_ARCHIVED = "not_archived"
    GAP = "gap"
    REST = "rest"
    DONE = "done"

    @property
    def severity(self) -> Severity:
        return _SEVERITY.get(self, Severity.INFO)


_SEVERITY = {
    EventKind.REPUBLISHED: Severity.WARNING,
    EventKind.INTERRUPTED: Severity.WARNING,
    EventKind.GAP: Severity.WARNING,
    EventKind.REFUSED: Severity.ERROR,
    EventKind.MISSING: Severity.ERROR,
}


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
    def last_trade_ids(self) -> dict[str, int]:
        """Per symbol, the highest stored id: where live capture continues."""
        return {s.symbol: s.last_trade_id for s in self.symbols if s.last_trade_id is not None}
