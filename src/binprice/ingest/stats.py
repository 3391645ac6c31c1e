"""Live counters of an ingest run, and the immutable summary it ends with.

`IngestStats` is the counting arithmetic of a run's `Recorder` (binprice.ingest.recorder),
which alone calls its recording methods; views read frozen copies (`summary()`, the recorder's
snapshot). Time comes from the injected `clock`. One event loop, so no locks.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from binprice.db.copy import Batch

#: Latency histogram resolution: one bucket per millisecond up to this, then one overflow bucket.
LATENCY_BUCKETS_MS = 10_000
#: Above LATENCY_BUCKETS_MS (a database outage, a long backfill), latencies are also counted in
#: buckets this much wider than the one before (1 %), so quantiles stay within 1 % of the truth
#: however long the lag, in a few hundred buckets for any lag of the next years.
LATENCY_OVER_GROWTH = 1.01
#: Upper bounds (seconds) of the batch commit duration histogram; one more bucket above.
COMMIT_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class SymbolCounters:
    """Mutable per-symbol counters."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    gaps: int = 0
    missing: int = 0
    backfilled: int = 0
    #: Ids over --backfill-max, recorded as `skipped` gaps instead of fetched.
    skipped: int = 0
    last_price: Decimal | None = None
    last_trade_id: int | None = None
    last_time_ms: int | None = None
    lag_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SymbolStats:
    """Frozen per-symbol view."""

    symbol: str
    received: int
    stored: int
    duplicates: int
    gaps: int
    missing: int
    backfilled: int
    skipped: int
    last_price: Decimal | None
    last_trade_id: int | None
    last_time_ms: int | None
    lag_ms: int | None
    trades_per_second: float


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What an ingest run did, for the final summary line and for tests."""

    elapsed: float
    stored: int
    received: int
    duplicates: int
    reconnects: int
    malformed: int
    error_frames: int
    other_frames: int
    gaps: int
    missing: int
    backfilled: int
    skipped: int
    rotations: int
    stale: int
    rate_limited: int
    batches: int
    spilled: int
    db_errors: int
    dropped: int
    reconcile_checks: int
    reconcile_found: int
    #: Per connection label, the trades it delivered first (see --redundancy).
    delivered_first: dict[str, int]
    #: Why the last connection attempt failed, if it did (None once a connection is up).
    connect_problem: str | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: int | None
    symbols: tuple[SymbolStats, ...]
    #: How many committed trades the latency percentiles are measured over.
    latency_samples: int = 0


@dataclass(slots=True)
class IngestStats:
    """Mutable counters of a running ingest."""

    symbols: dict[str, SymbolCounters] = field(default_factory=dict)
    #: Monotonic seconds: what `started`, `last_commit`, `short_since` and the rates are on.
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    reconnects: int = 0
    connections: int = 0
    #: Make-before-break rotations (lifetime, serverShutdown); also counted in `reconnects`.
    rotations: int = 0
    #: Connections abandoned by the stale watchdog.
    stale: int = 0
    #: REST answers 429/418 (rate limited / banned) that were waited out.
    rate_limited: int = 0
    malformed: int = 0
    error_frames: int = 0
    other_frames: int = 0
    batches: int = 0
    spilled: int = 0
    spilled_chunks: int = 0
    db_errors: int = 0
    #: Writes rolled back by a deadlock or serialization failure with another writer (retried).
    conflicts: int = 0
    db_down: bool = False
    #: Trades that could be neither committed nor spooled (recorded as gaps, fetched again).
    dropped: int = 0
    #: Why the last connection attempt failed, while no connection is up (None once one is).
    connect_problem: str | None = None
    #: Newest-id questions asked of the exchange, and the ids they found missing.
    reconcile_checks: int = 0
    reconcile_found: int = 0
    #: Connection labels, and per connection how many accepted trades it delivered first.
    sources: list[str] = field(default_factory=lambda: ["stream"])
    delivered_first: list[int] = field(default_factory=lambda: [0])
    latency: list[int] = field(default_factory=lambda: [0] * (LATENCY_BUCKETS_MS + 1))
    latency_sum_ms: int = 0
    #: Latencies of LATENCY_BUCKETS_MS and more, per LATENCY_OVER_GROWTH bucket (see `_over`).
    latency_over: dict[int, int] = field(default_factory=dict)
    #: The highest latency recorded, exactly (None before the first commit).
    latency_max_ms: int | None = None
    #: Batch commits per COMMIT_BUCKETS_SECONDS bucket (the last: above them all), and their sum.
    commit_durations: list[int] = field(
        default_factory=lambda: [0] * (len(COMMIT_BUCKETS_SECONDS) + 1)
    )
    commit_seconds: float = 0.0
    #: When the last batch committed (monotonic), None before the first.
    last_commit: float | None = None
    #: WebSocket connections open now, and how many the run's groups want open.
    open_connections: int = 0
    wanted_connections: int = 0
    #: Since when (monotonic) fewer are open than wanted; None while all are.
    short_since: float | None = None
    _rate_mark: tuple[float, dict[str, int]] = field(default_factory=lambda: (0.0, {}))
    _rates: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def set_sources(self, labels: list[str]) -> None:
        """Name the connections whose first deliveries are counted (before the run starts)."""
        self.sources = list(labels)
        self.delivered_first[:] = [0] * len(labels)

    # --- recording: every counter change goes through one of these ---------------------------

    def committed(
        self, batch: Batch, inserted: dict[str, int], committed_ms: int, took: float = 0.0
    ) -> None:
        """A batch committed: `inserted` new rows per symbol, at `committed_ms` (epoch ms),
        the commit having taken `took` seconds."""
        self.batches += 1
        self.last_commit = self.clock()
        self.commit_seconds += took
        self.commit_durations[bisect_left(COMMIT_BUCKETS_SECONDS, took)] += 1
        for symbol, n in inserted.items():
            self.symbol(symbol).stored += n
        self.record_latencies(committed_ms, batch.times)
        for symbol, (trade_id, price, time_ms) in batch.latest.items():
            c = self.symbol(symbol)
            if c.last_trade_id is None or trade_id >= c.last_trade_id:
                c.last_trade_id = trade_id
                c.last_price = Decimal(price)
                c.last_time_ms = time_ms
                c.lag_ms = committed_ms - time_ms

    def resumed(self, symbol: str, last_stored: int | None) -> None:
        self.symbol(symbol).last_trade_id = last_stored

    def stored_before(self, last_times_ms: dict[str, int]) -> None:
        """The trade times of the last trades stored before this run (for their age)."""
        for symbol, time_ms in last_times_ms.items():
            counters = self.symbol(symbol)
            if counters.last_time_ms is None:
                counters.last_time_ms = time_ms

    def spilled_to_disk(self, trades: int) -> None:
        self.spilled += trades
        self.spilled_chunks += 1

    def dropped_trades(self, trades: int) -> None:
        self.dropped += trades

    def database_failed(self) -> bool:
        """A commit failed; True if the database was up until now."""
        self.db_errors += 1
        was_up, self.db_down = not self.db_down, True
        return was_up

    def conflict(self) -> None:
        """A write was rolled back by a conflict with another writer (and is retried)."""
        self.conflicts += 1

    def database_recovered(self) -> bool:
        """A commit succeeded; True if the database was down until now."""
        was_down, self.db_down = self.db_down, False
        return was_down

    def connected(self) -> None:
        self.connections += 1
        self.open_connections += 1
        self.connect_problem = None
        self._count_open()

    def disconnected(self) -> None:
        self.open_connections -= 1
        self._count_open()

    def want_connections(self, wanted: int) -> None:
        """The run's groups now want `wanted` connections open (one each)."""
        self.wanted_connections = wanted
        self._count_open()

    def _count_open(self) -> None:
        if self.open_connections >= self.wanted_connections:
            self.short_since = None
        elif self.short_since is None:
            self.short_since = self.clock()

    def connect_failed(self, reason: str) -> None:
        self.connect_problem = reason

    def reconnected(self, *, rotation: bool = False, stale: bool = False) -> None:
        self.reconnects += 1
        self.rotations += rotation
        self.stale += stale

    def frame_rejected(self, kind: str) -> None:
        """A frame that is not a trade: `malformed`, `error` (an error frame) or `other`."""
        if kind == "malformed":
            self.malformed += 1
        elif kind == "error":
            self.error_frames += 1
        else:
            self.other_frames += 1

    def gap_opened(self, symbol: str, skipped: int) -> None:
        counters = self.symbol(symbol)
        counters.gaps += 1
        counters.skipped += skipped

    def hole(self, symbol: str, ids: int) -> None:
        self.symbol(symbol).missing += ids

    def backfilled_trades(self, symbol: str, trades: int) -> None:
        counters = self.symbol(symbol)
        counters.received += trades
        counters.backfilled += trades

    def rest_rate_limited(self, answers: int) -> None:
        """The REST client has now waited out `answers` 429/418 answers in all."""
        self.rate_limited = answers

    def reconciled(self, found: int) -> None:
        """The exchange was asked for a newest id; `found` ids past the last seen."""
        self.reconcile_checks += 1
        self.reconcile_found += found

    def add_source(self, label: str) -> int:
        """A connection opened while the run goes on (`--all`): its number."""
        self.sources.append(label)
        self.delivered_first.append(0)
        return len(self.sources) - 1

    def symbol(self, symbol: str) -> SymbolCounters:
        counters = self.symbols.get(symbol)
        if counters is None:
            counters = self.symbols[symbol] = SymbolCounters()
        return counters

    @property
    def stored(self) -> int:
        return sum(c.stored for c in self.symbols.values())

    def record_latencies(self, now_ms: int, times_ms: Iterable[int]) -> None:
        """Add trade-time → commit latencies of one committed batch to the histogram."""
        hist = self.latency
        cap = LATENCY_BUCKETS_MS
        over = self.latency_over
        total = 0
        highest = -1
        for t in times_ms:
            lag = now_ms - t
            if lag < 0:
                lag = 0
            total += lag
            if lag > highest:
                highest = lag
            if lag >= cap:
                hist[cap] += 1
                k = _over_bucket(lag)
                over[k] = over.get(k, 0) + 1
            else:
                hist[lag] += 1
        self.latency_sum_ms += total
        if highest >= 0 and (self.latency_max_ms is None or highest > self.latency_max_ms):
            self.latency_max_ms = highest

    def percentile(self, fraction: float) -> float | None:
        """The latency (ms) at `fraction` of the recorded ones: exact to the millisecond below
        LATENCY_BUCKETS_MS, above it the upper bound of a 1 % wide bucket (never above the
        maximum), so a long lag is never reported as less than it was."""
        hist = self.latency
        total = sum(hist)
        if total == 0:
            return None
        rank = fraction * total
        seen = 0
        for ms in range(LATENCY_BUCKETS_MS):
            seen += hist[ms]
            if seen >= rank:
                return float(ms)
        highest = float(self.latency_max_ms or LATENCY_BUCKETS_MS)
        for k in sorted(self.latency_over):
            seen += self.latency_over[k]
            if seen >= rank:
                return min(_over_bound(k), highest)
        return highest

    def rates(self) -> dict[str, float]:
        """Stored trades per second per symbol, over the time since the previous call (≥ 1 s)."""
        now = self.clock()
        mark_time, mark_counts = self._rate_mark
        if now - mark_time >= 1.0:
            counts = {s: c.stored for s, c in self.symbols.items()}
            if mark_time:
                span = now - mark_time
                self._rates = {s: (n - mark_counts.get(s, 0)) / span for s, n in counts.items()}
            self._rate_mark = (now, counts)
        return self._rates

    def summary(self) -> IngestSummary:
        rates = self.rates()
        per_symbol = tuple(
            SymbolStats(
                symbol=s,
                received=c.received,
                stored=c.stored,
                duplicates=c.duplicates,
                gaps=c.gaps,
                missing=c.missing,
                backfilled=c.backfilled,
                skipped=c.skipped,
                last_price=c.last_price,
                last_trade_id=c.last_trade_id,
                last_time_ms=c.last_time_ms,
                lag_ms=c.lag_ms,
                trades_per_second=rates.get(s, 0.0),
            )
            for s, c in sorted(self.symbols.items())
        )
        return IngestSummary(
            elapsed=self.clock() - self.started,
            stored=sum(c.stored for c in per_symbol),
            received=sum(c.received for c in per_symbol),
            duplicates=sum(c.duplicates for c in per_symbol),
            reconnects=self.reconnects,
            malformed=self.malformed,
            error_frames=self.error_frames,
            other_frames=self.other_frames,
            gaps=sum(c.gaps for c in per_symbol),
            missing=sum(c.missing for c in per_symbol),
            backfilled=sum(c.backfilled for c in per_symbol),
            skipped=sum(c.skipped for c in per_symbol),
            rotations=self.rotations,
            stale=self.stale,
            rate_limited=self.rate_limited,
            batches=self.batches,
            spilled=self.spilled,
            db_errors=self.db_errors,
            dropped=self.dropped,
            reconcile_checks=self.reconcile_checks,
            reconcile_found=self.reconcile_found,
            delivered_first=dict(zip(self.sources, self.delivered_first, strict=True)),
            connect_problem=self.connect_problem,
            latency_p50_ms=self.percentile(0.50),
            latency_p99_ms=self.percentile(0.99),
            latency_max_ms=self.latency_max_ms,
            symbols=per_symbol,
            latency_samples=sum(self.latency),
        )


def _over_bucket(lag_ms: int) -> int:
    """The LATENCY_OVER_GROWTH bucket of a latency of LATENCY_BUCKETS_MS or more."""
    return int(math.log(lag_ms / LATENCY_BUCKETS_MS) / math.log(LATENCY_OVER_GROWTH))


def _over_bound(bucket: int) -> float:
    """The upper bound (ms) of a LATENCY_OVER_GROWTH bucket."""
    return LATENCY_BUCKETS_MS * LATENCY_OVER_GROWTH ** (bucket + 1)
