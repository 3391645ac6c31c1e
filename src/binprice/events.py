"""What a run reports: one `EventKind` per kind of thing an ingest or an import run reports,
each with its name in the JSON lines and a severity.

The run never prints; it reports events through one `EventSink`, and the output layer decides
what to show. Filters derive from severity, so `-q` shows every problem (every WARNING and ERROR)
and nothing else, however many kinds are added later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum


class Severity(IntEnum):
    """How much an event matters. `-q` shows WARNING and above."""

    INFO = 20
    #: Something went wrong that binprice is handling (a reconnect, a gap being fetched).
    WARNING = 30
    #: Something went wrong that may need the user (the database is down, trades dropped).
    ERROR = 40


class EventKind(Enum):
    """Every kind of event a run reports: its name in JSON logs (`label`) and its severity.

    The ingest's kinds come first, then the import's (`binprice import`, and the archive part of
    `ingest --since`); `GAP` is both's: ids the run knows exist and does not have.
    """

    MIGRATED = ("migrated", Severity.INFO)
    #: Another ingest captures some of the same symbols into the same database.
    SHARED = ("shared", Severity.WARNING)
    CONNECTED = ("connected", Severity.INFO)
    RECONNECT = ("reconnect", Severity.WARNING)
    ROTATE = ("rotate", Severity.INFO)
    SERVER_SHUTDOWN = ("server_shutdown", Severity.INFO)
    GAP = ("gap", Severity.WARNING)
    GAP_SKIPPED = ("gap_skipped", Severity.WARNING)
    GAP_RESUMED = ("gap_resumed", Severity.INFO)
    HOLE = ("hole", Severity.WARNING)
    #: The exchange has trades past the last one seen (a quiet stream after a drop, a stop).
    RECONCILED = ("reconciled", Severity.WARNING)
    #: Stored ids with a hole nobody recorded, found at start and recorded now.
    REPAIRED = ("repaired", Severity.WARNING)
    BACKFILL = ("backfill", Severity.INFO)
    BACKFILL_ERROR = ("backfill_error", Severity.ERROR)
    RATE_LIMITED = ("rate_limited", Severity.WARNING)
    DB_DOWN = ("db_down", Severity.ERROR)
    DB_UP = ("db_up", Severity.WARNING)
    #: A write lost a race with another writer (a deadlock, a serialization failure) and is
    #: tried again; the database is up.
    CONFLICT_RETRIED = ("conflict_retried", Severity.WARNING)
    SPOOLED = ("spooled", Severity.WARNING)
    #: Spool chunks a run that died left behind, taken over by this one.
    SPOOL_ADOPTED = ("spool_adopted", Severity.WARNING)
    #: Trades that could be neither committed nor spooled: recorded as gaps, fetched later.
    DROPPED = ("dropped", Severity.ERROR)
    MALFORMED = ("malformed", Severity.WARNING)
    ERROR_FRAME = ("error_frame", Severity.WARNING)
    #: `ingest --since`: what the archive import before streaming did (per file).
    HISTORY = ("history", Severity.INFO)
    HISTORY_PROBLEM = ("history_problem", Severity.WARNING)
    #: `ingest --all`: symbols that started or stopped TRADING while the run went on.
    LISTING = ("listing", Severity.INFO)
    #: ... and an exchangeInfo that could not be re-read (the set stays as it was).
    LISTING_ERROR = ("listing_error", Severity.WARNING)
    #: `--metrics-port`: where /metrics and /healthz are served.
    METRICS = ("metrics", Severity.INFO)
    #: Monthly partitions of trades made ahead of the trades that will need them.
    PARTITIONS = ("partitions", Severity.INFO)
    #: ... and a try that could not make them (the next one is an hour later).
    PARTITIONS_ERROR = ("partitions_error", Severity.WARNING)
    #: A log record of binprice's own (a notice) or a warning of a library it uses (psycopg),
    #: shown as the run's other lines are (JSON with --log-format json).
    NOTICE = ("notice", Severity.INFO)
    LIBRARY_WARNING = ("library_warning", Severity.WARNING)
    STOPPING = ("stopping", Severity.INFO)
    STOPPED = ("stopped", Severity.INFO)
    #: The error that ended the run (`--log-format json`; the text format's `error: …` line).
    FATAL = ("fatal", Severity.ERROR)

    # --- the import: per archive file, then per symbol ----------------------------------------
    PLANNED = ("planned", Severity.INFO)
    SKIPPED = ("skipped", Severity.INFO)
    REPUBLISHED = ("republished", Severity.WARNING)
    RESUMED = ("resumed", Severity.INFO)
    LOADED = ("loaded", Severity.INFO)
    INTERRUPTED = ("interrupted", Severity.WARNING)
    #: A file a stop left before any of it was stored (its download abandoned).
    NOT_LOADED = ("not_loaded", Severity.WARNING)
    REFUSED = ("refused", Severity.ERROR)
    MISSING = ("missing", Severity.ERROR)
    DAILY_INSTEAD = ("daily_instead", Severity.INFO)
    NOT_PUBLISHED = ("not_published", Severity.INFO)
    NOT_ARCHIVED = ("not_archived", Severity.INFO)
    REST = ("rest", Severity.INFO)
    #: A month's partition of trades, made before its first file loads ...
    PARTITION = ("partition", Severity.INFO)
    #: ... or not (a long query held the DEFAULT partition): its trades wait there.
    PARTITION_BUSY = ("partition_busy", Severity.WARNING)
    DONE = ("done", Severity.INFO)

    def __init__(self, label: str, severity: Severity) -> None:
        self.label = label
        self.severity = severity

    @property
    def is_problem(self) -> bool:
        return self.severity >= Severity.WARNING


@dataclass(frozen=True, slots=True)
class IngestEvent:
    """One thing worth a log line."""

    time: float
    kind: EventKind
    message: str


#: How the pipeline reports: emit(kind, message).
Emit = Callable[[EventKind, str], None]
#: At most one event of a noisy kind per this many seconds; the next says how many were hidden.
NOISY_KINDS = frozenset({EventKind.MALFORMED, EventKind.ERROR_FRAME, EventKind.DROPPED})
NOISY_INTERVAL_SECONDS = 10.0


class EventSink:
    """Rate-limits noisy kinds and forwards the rest to a callback."""

    def __init__(
        self,
        callback: Callable[[IngestEvent], None] | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._callback = callback
        self._clock = clock
        self._last: dict[EventKind, float] = {}
        self._suppressed: dict[EventKind, int] = {}

    def __call__(self, kind: EventKind, message: str) -> None:
        if self._callback is None:
            return
        now = self._clock()
        if kind in NOISY_KINDS:
            last = self._last.get(kind)
            if last is not None and now - last < NOISY_INTERVAL_SECONDS:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            skipped = self._suppressed.pop(kind, 0)
            if skipped:
                message += f" (+{skipped} more since the last report)"
        self._callback(IngestEvent(now, kind, message))
