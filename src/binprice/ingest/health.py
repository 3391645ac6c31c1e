"""Is a running ingest healthy? The one judgement `/healthz` and `binprice_healthy` share.

Healthy means: streaming (not starting or stopping), every connection the run wants is open (or
was down for less than the threshold: a reconnect takes about a second), the database takes
commits, and no received trade has waited longer than the threshold to be committed. A quiet
market is healthy: nothing waiting is nothing late.

`RunProbe` holds what the judgement reads: the run's recorder (its snapshot: phase, counts,
and the time on the recorder's clock) and its parts. `judge` is a pure function of a snapshot,
the buffer's backlog and the threshold; `health` takes the snapshot and judges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from binprice.ingest.recorder import Phase

if TYPE_CHECKING:
    from binprice.completeness.gapkeeper import GapKeeper
    from binprice.exchange.rest import RestClient
    from binprice.ingest.buffer import TradeBuffer
    from binprice.ingest.recorder import Recorder, RunSnapshot


@dataclass(slots=True)
class RunProbe:
    """What metrics and health read: the run's recorder and the parts they look into."""

    recorder: Recorder
    buffer: TradeBuffer
    #: Seconds a wait (a commit, a connection) may last before the run counts as unhealthy.
    threshold: float
    gaps: GapKeeper | None = None
    #: Set once the run's REST client exists (its session lives inside the run).
    rest: RestClient | None = None


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    #: Why not, one sentence each (empty when healthy).
    reasons: tuple[str, ...]
    phase: Phase
    database_up: bool
    connections_open: int
    connections_wanted: int
    #: Trades received and not yet committed (in memory and in the spool's chunks).
    waiting_trades: int
    spool_chunks: int
    #: Seconds since the last commit (None before the first).
    last_commit_seconds_ago: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "reasons": list(self.reasons),
            "phase": self.phase.value,
            "database_up": self.database_up,
            "connections_open": self.connections_open,
            "connections_wanted": self.connections_wanted,
            "waiting_trades": self.waiting_trades,
            "spool_chunks": self.spool_chunks,
            "last_commit_seconds_ago": (
                None
                if self.last_commit_seconds_ago is None
                else round(self.last_commit_seconds_ago, 3)
            ),
        }


def health(probe: RunProbe, now: float | None = None) -> Health:
    """Judge the run's snapshot, at `now` on the recorder's clock (default: the snapshot's)."""
    snap = probe.recorder.snapshot()
    return judge(snap, probe.buffer, probe.threshold, snap.at if now is None else now)


def judge(snap: RunSnapshot, buffer: TradeBuffer, threshold: float, now: float) -> Health:
    """Judge `snap` at time `now`, with `buffer`'s backlog."""
    reasons: list[str] = []
    if snap.phase is Phase.STARTING:
        reasons.append("starting: connecting to the database and the exchange")
    elif snap.phase is Phase.STOPPING:
        reasons.append("stopping")
    if snap.db_down:
        reasons.append(
            f"the database is unavailable ({snap.summary.db_errors} failed commits); received "
            "trades are kept in the spool until it is back"
        )
    chunks = len(buffer.spool) if buffer.spool is not None else 0
    waiting = len(buffer)
    since = snap.last_commit if snap.last_commit is not None else snap.started
    if (waiting or chunks) and now - since > threshold:
        what = f"{waiting:,} trades" + (f" and {chunks} spool chunks" if chunks else "")
        reasons.append(f"nothing committed for {now - since:.0f} s while {what} wait")
    if snap.phase is Phase.STREAMING and snap.short_since is not None:
        down_for = now - snap.short_since
        if down_for > threshold:
            down = snap.wanted_connections - snap.open_connections
            problem = f": {snap.summary.connect_problem}" if snap.summary.connect_problem else ""
            reasons.append(
                f"{down} of {snap.wanted_connections} connections down for "
                f"{down_for:.0f} s{problem}"
            )
    return Health(
        healthy=not reasons,
        reasons=tuple(reasons),
        phase=snap.phase,
        database_up=not snap.db_down,
        connections_open=snap.open_connections,
        connections_wanted=snap.wanted_connections,
        waiting_trades=waiting,
        spool_chunks=chunks,
        last_commit_seconds_ago=None if snap.last_commit is None else now - snap.last_commit,
    )
