"""One run's record: every counter and every event of an ingest run, written in one place.

The parts of a run call the `Recorder` when something happens, with a verb named for it
(`gap_opened`, `connected`, `committed`, ...); each call updates the counts and reports the event
together, so a count and its log line can never disagree. Nothing else writes a counter.
Readers (`/healthz`, `/metrics`, the live view, the final summary) take a `RunSnapshot`: frozen,
consistent, taken at one instant of the recorder's clock.

The one exception is the tracker's hot path, which bumps a symbol's `received`/`duplicates`
and the first-delivery counts on counters the recorder hands it (`hot_counters`,
`first_deliveries`): a method call per trade would cost more than the rest of its work.

The clock is injected (`clock`, monotonic seconds; `wall_clock` for event times), so tests
drive time instead of waiting for it. One event loop, so no locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from binprice.events import EventKind, EventSink, IngestEvent
from binprice.ingest.stats import IngestStats, IngestSummary, SymbolCounters

if TYPE_CHECKING:
    from binprice.db.copy import Batch

#: Monotonic seconds: what decides durations (elapsed, since-when, rates).
Clock = Callable[[], float]


class Phase(Enum):
    """Where a run is in its life."""

    #: `--since`: importing archives before streaming (committing, so healthy).
    IMPORTING = "importing"
    #: Connecting to the database and the exchange, resuming.
    STARTING = "starting"
    STREAMING = "streaming"
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """What a run has recorded, at one instant (`at`, on the recorder's clock)."""

    at: float
    phase: Phase
    #: Symbols carried now.
    symbols_carried: int
    summary: IngestSummary
    started: float
    connections: int
    open_connections: int
    wanted_connections: int
    #: Since when fewer connections are open than wanted (None while all are).
    short_since: float | None
    db_down: bool
    conflicts: int
    spilled_chunks: int
    #: When the last batch committed (None before the first).
    last_commit: float | None
    #: Latency histogram (one bucket per ms, the last one for the rest) and its sum.
    latency: tuple[int, ...]
    latency_sum_ms: int
    commit_durations: tuple[int, ...]
    commit_seconds: float


class Recorder:
    """Counts what happens in one run and reports it, in one call per happening."""

    def __init__(
        self,
        on_event: Callable[[IngestEvent], None] | None = None,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        #: Monotonic seconds, for durations; epoch seconds, for when things happened.
        self.clock = clock
        self.wall_clock = wall_clock
        self._counts = IngestStats(clock=clock)
        self._emit = EventSink(on_event, clock=wall_clock)
        self._phase = Phase.STARTING
        self._symbols_carried = 0
        #: What the events call the run's records: "trades", or "aggregate trades" in a run of
        #: `--stream aggTrade` (whose ids are aggregate ids); set by `run_ingest`.
        self.records = "trades"

    def listen(self, on_event: Callable[[IngestEvent], None] | None) -> None:
        """Report events to `on_event` from now on (before the run starts)."""
        self._emit = EventSink(on_event, clock=self.wall_clock)

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self) -> RunSnapshot:
        c = self._counts
        return RunSnapshot(
            at=self.clock(),
            phase=self._phase,
            symbols_carried=self._symbols_carried,
            summary=c.summary(),
            started=c.started,
            connections=c.connections,
            open_connections=c.open_connections,
            wanted_connections=c.wanted_connections,
            short_since=c.short_since,
            db_down=c.db_down,
            conflicts=c.conflicts,
            spilled_chunks=c.spilled_chunks,
            last_commit=c.last_commit,
            latency=tuple(c.latency),
            latency_sum_ms=c.latency_sum_ms,
            commit_durations=tuple(c.commit_durations),
            commit_seconds=c.commit_seconds,
        )

    def summary(self) -> IngestSummary:
        """What the run did so far (the live view's and the final line's numbers)."""
        return self._counts.summary()

    def event(self, kind: EventKind, message: str) -> None:
        """Report something that changes no count (an `Emit`)."""
        self._emit(kind, message)

    # --- the run's life ---------------------------------------------------------------------

    def phase(self, phase: Phase) -> None:
        """The run entered `phase`; streaming starts the clock of its rates and elapsed."""
        self._phase = phase
        if phase is Phase.STREAMING:
            self._counts.started = self.clock()

    def carrying(self, symbols: int) -> None:
        self._symbols_carried = symbols

    def stored_before(self, last_times_ms: dict[str, int]) -> None:
        """The trade times of the last trades stored before this run (for their age)."""
        self._counts.stored_before(last_times_ms)

    def resumed(self, symbol: str, last_stored: int | None) -> None:
        self._counts.resumed(symbol, last_stored)

    def stopped(self, message: str) -> None:
        self._emit(EventKind.STOPPED, message)

    # --- the tracker's hot path -------------------------------------------------------------

    def hot_counters(self, symbol: str) -> SymbolCounters:
        """`symbol`'s counters, for the tracker to bump `received`/`duplicates` per trade."""
        return self._counts.symbol(symbol)

    @property
    def first_deliveries(self) -> list[int]:
        """Per source, the accepted trades it delivered first (bumped by the tracker)."""
        return self._counts.delivered_first

    # --- connections ------------------------------------------------------------------------

    def sources(self, labels: list[str]) -> None:
        """Name the connections whose first deliveries are counted (before the run starts)."""
        self._counts.set_sources(labels)

    def source_added(self, label: str) -> int:
        """A connection group opened while the run goes on (`--all`): its number."""
        return self._counts.add_source(label)

    def want_connections(self, wanted: int) -> None:
        self._counts.want_connections(wanted)

    def connected(self, label: str, number: int) -> None:
        self._counts.connected()
        self._emit(EventKind.CONNECTED, f"{label}: connected (connection {number})")

    def disconnected(self) -> None:
        self._counts.disconnected()

    def connect_failed(self, reason: str) -> None:
        self._counts.connect_failed(reason)

    def reconnecting(self, label: str, ended: str, delay: float, *, stale: bool) -> None:
        self._counts.reconnected(stale=stale)
        self._emit(EventKind.RECONNECT, f"{label}: {ended}; reconnecting in {delay:.1f} s")

    def rotation_due(self, label: str, *, server_shutdown: bool) -> None:
        if server_shutdown:
            self._emit(EventKind.SERVER_SHUTDOWN, f"{label}: serverShutdown received; rotating")
        else:
            self._emit(EventKind.ROTATE, f"{label}: lifetime reached; rotating")

    def rotated(self) -> None:
        """A successor connection took over (make before break)."""
        self._counts.reconnected(rotation=True)

    def error_frame(self, label: str, code: object, msg: str) -> None:
        self._counts.frame_rejected("error")
        self._emit(EventKind.ERROR_FRAME, f"{label}: error frame code {code}: {msg}")

    def malformed_frame(self, label: str, reason: str) -> None:
        self._counts.frame_rejected("malformed")
        self._emit(EventKind.MALFORMED, f"{label}: malformed frame: {reason}")

    def other_frame(self) -> None:
        self._counts.frame_rejected("other")

    # --- gaps -------------------------------------------------------------------------------

    def gap_opened(
        self,
        symbol: str,
        first: int,
        last: int,
        *,
        skipped_to: int | None = None,
        kind: EventKind = EventKind.GAP,
        why: str = "",
        fetching: bool = True,
    ) -> None:
        """Ids `first..last` of `symbol` are missing; `first..skipped_to` of them are over
        --backfill-max (recorded as skipped, not fetched)."""
        skipped = 0
        if skipped_to is not None:
            skipped = skipped_to - first + 1
            self._emit(
                EventKind.GAP_SKIPPED,
                f"{symbol}: {self.records} {first}..{skipped_to} ({skipped:,}) are over "
                "--backfill-max; "
                "recorded as skipped",
            )
            first = skipped_to + 1
        self._counts.gap_opened(symbol, skipped)
        if first > last:
            return
        then = "fetching them" if fetching else "recorded; the next run fetches them"
        count = last - first + 1
        records = self.records
        self._emit(kind, f"{symbol}: {records} {first}..{last} ({count:,}) missing{why}; {then}")

    def hole(self, symbol: str, first: int, last: int) -> None:
        """The exchange has no trades `first..last` of `symbol`."""
        self._counts.hole(symbol, last - first + 1)
        self._emit(
            EventKind.HOLE,
            f"{symbol}: the exchange has no {self.records} {first}..{last}; recorded",
        )

    def backfilled(self, symbol: str, trades: int, from_id: int) -> None:
        self._counts.backfilled_trades(symbol, trades)
        if trades:
            self._emit(
                EventKind.BACKFILL,
                f"{symbol}: backfilled {trades:,} {self.records} from {from_id}",
            )

    def rest_rate_limited(self, answers: int) -> None:
        """The REST client has now waited out `answers` 429/418 answers in all."""
        self._counts.rest_rate_limited(answers)

    def reconciled(self, found: int) -> None:
        """The exchange was asked for a newest id; `found` ids past the last seen."""
        self._counts.reconciled(found)

    # --- the database and the spool ---------------------------------------------------------

    def committed(
        self, batch: Batch, inserted: dict[str, int], committed_ms: int, took: float
    ) -> bool:
        """A batch committed; True if the database was down until now (and says it is up)."""
        recovered = self._counts.database_recovered()
        if recovered:
            self._emit(EventKind.DB_UP, "database available again")
        self._counts.committed(batch, inserted, committed_ms, took)
        return recovered

    def database_failed(self, why: str) -> bool:
        """A commit failed; True if the database was up until now (and says it is down)."""
        went_down = self._counts.database_failed()
        if went_down:
            self._emit(EventKind.DB_DOWN, f"database unavailable, retrying: {why}")
        return went_down

    def conflict(self, why: str) -> None:
        """A write lost a race with another writer, was rolled back, and is retried."""
        self._counts.conflict()
        self._emit(
            EventKind.CONFLICT_RETRIED,
            f"a write conflicted with another writer's and was rolled back; retrying it: {why}",
        )

    def spilled(self, trades: int) -> None:
        self._counts.spilled_to_disk(trades)

    def dropped(self, trades: int) -> None:
        """Trades that could be neither committed nor spooled (their ids become gaps)."""
        self._counts.dropped_trades(trades)
