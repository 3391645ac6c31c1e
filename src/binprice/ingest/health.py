"""Is a running ingest healthy? The one judgement `/healthz` and `binprice_healthy` share.

Healthy means: streaming (not starting or stopping), every connection the run wants is open (or
was down for less than the threshold: a reconnect takes about a second), the database takes
commits, and no received trade has waited longer than the threshold to be committed. A quiet
market is healthy: nothing waiting is nothing late.

`RunProbe` is what the judgement reads; the run fills it in as it builds its parts. `health` is
a pure function of the probe and the time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from binprice.ingest.buffer import TradeBuffer
    from binprice.ingest.gapkeeper import GapKeeper
    from binprice.ingest.rest import RestClient
    from binprice.ingest.stats import IngestStats


class Phase(Enum):
    """Where a run is in its life."""

    #: `--since`: importing archives before streaming (committing, so healthy).
    IMPORTING = "importing"
    #: Connecting to the database and the exchange, resuming.
    STARTING = "starting"
    STREAMING = "streaming"
    STOPPING = "stopping"


@dataclass(slots=True)
class RunProbe:
    """The parts of a run that metrics and health read, set as the run builds them."""

    stats: IngestStats
    buffer: TradeBuffer
    #: Seconds a wait (a commit, a connection) may last before the run counts as unhealthy.
    threshold: float
    phase: Phase = Phase.STARTING
    gaps: GapKeeper | None = None
    rest: RestClient | None = None
    #: Symbols carried now.
    symbols: int = 0


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
    """Judge `probe` at monotonic time `now`."""
    now = time.monotonic() if now is None else now
    stats, buffer, threshold = probe.stats, probe.buffer, probe.threshold
    reasons: list[str] = []
    if probe.phase is Phase.STARTING:
        reasons.append("starting: connecting to the database and the exchange")
    elif probe.phase is Phase.STOPPING:
        reasons.append("stopping")
    if stats.db_down:
        reasons.append(
            f"the database is unavailable ({stats.db_errors} failed commits); received "
            "trades are kept in the spool until it is back"
        )
    chunks = len(buffer.spool) if buffer.spool is not None else 0
    waiting = len(buffer)
    since = stats.last_commit if stats.last_commit is not None else stats.started
    if (waiting or chunks) and now - since > threshold:
        what = f"{waiting:,} trades" + (f" and {chunks} spool chunks" if chunks else "")
        reasons.append(f"nothing committed for {now - since:.0f} s while {what} wait")
    if probe.phase is Phase.STREAMING and stats.short_since is not None:
        down_for = now - stats.short_since
        if down_for > threshold:
            down = stats.wanted_connections - stats.open_connections
            problem = f": {stats.connect_problem}" if stats.connect_problem else ""
            reasons.append(
                f"{down} of {stats.wanted_connections} connections down for "
                f"{down_for:.0f} s{problem}"
            )
    return Health(
        healthy=not reasons,
        reasons=tuple(reasons),
        phase=probe.phase,
        database_up=not stats.db_down,
        connections_open=stats.open_connections,
        connections_wanted=stats.wanted_connections,
        waiting_trades=waiting,
        spool_chunks=chunks,
        last_commit_seconds_ago=None if stats.last_commit is None else now - stats.last_commit,
    )
