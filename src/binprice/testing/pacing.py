"""When each paced symbol owes its next trades: a heap of due times, one entry per symbol.

A tick costs only the symbols that fell due, not every symbol, so an exchange with a thousand
quiet symbols and a few busy ones stays cheap (the shape of a real market, whose rates are
heavy-tailed). Each symbol keeps its own start and count, so its long-run rate is exact
whatever the tick length, and a symbol that was not allowed to trade for a while (paused,
halted) resumes at its rate without catching up.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

#: The producer wakes at least this often (so a newly due symbol is never late by more) ...
MAX_TICK_SECONDS = 0.05
#: ... and at most this often: sub-tick due times are batched, keeping writes few.
MIN_TICK_SECONDS = 0.002


@dataclass(slots=True)
class Pace:
    """One symbol's rate and how many trades it has been credited with since ``start``."""

    symbol: str
    rate: float
    start: float
    done: int = 0

    def owed(self, now: float) -> int:
        """Trades due by ``now`` and not yet credited (never negative)."""
        return max(0, int((now - self.start) * self.rate) - self.done)

    def next_at(self) -> float:
        """Monotonic time at which the next trade falls due."""
        return self.start + (self.done + 1) / self.rate


class PacedSchedule:
    """The paced symbols ordered by when their next trade falls due."""

    def __init__(self, rates: Mapping[str, float], now: float) -> None:
        for symbol, rate in rates.items():
            if not rate > 0:
                raise ValueError(f"rate of {symbol} must be positive, not {rate}")
        self._order = itertools.count()  # ties never compare Pace objects
        self._heap = [
            (pace.next_at(), next(self._order), pace)
            for pace in (Pace(s, r, now) for s, r in rates.items())
        ]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def wait_seconds(self, now: float) -> float:
        """How long the producer may sleep before the next symbol falls due."""
        if not self._heap:
            return MAX_TICK_SECONDS
        return min(MAX_TICK_SECONDS, max(MIN_TICK_SECONDS, self._heap[0][0] - now))

    def take_due(self, now: float) -> list[Pace]:
        """Remove and return every symbol due by ``now``; hand each back with :meth:`put_back`."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def put_back(self, pace: Pace) -> None:
        """Reschedule ``pace`` after its ``done`` count was updated (drop it by not calling)."""
        heapq.heappush(self._heap, (pace.next_at(), next(self._order), pace))
