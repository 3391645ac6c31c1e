"""Reconnect pacing: exponential backoff with full jitter, and Binance's connection budget.

Binance allows 300 connection attempts per 5 minutes per IP; a reconnect loop without backoff
burns that in seconds and gets the IP banned. `AttemptBudget` counts every attempt of the
process (all connection groups share one), and `Backoff` spaces one group's retries.

Backoff resets on evidence of health, not on a long life: a connection that completed its
handshake and delivered trades proves the endpoint works, however soon it was cut (a flaky
link that drops every few seconds must not push the blind time between connections to a
minute). What keeps a server that accepts and then drops at once from being hammered is the
budget: past half of it, attempts are spread evenly over the window.

The clock and the randomness are parameters so tests run with zero delay.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 60.0
#: Binance: 300 connection attempts per 5 minutes per IP. We keep a margin for other clients
#: on the same IP.
ATTEMPT_WINDOW_SECONDS = 300.0
ATTEMPT_LIMIT = 200


@dataclass(slots=True)
class AttemptBudget:
    """Connection attempts of the whole process in the last `window` seconds."""

    limit: int = ATTEMPT_LIMIT
    window: float = ATTEMPT_WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _times: deque[float] = field(default_factory=deque)

    def record(self) -> None:
        self._times.append(self.clock())

    def wait(self) -> float:
        """Seconds to wait before the next attempt keeps the process inside the budget."""
        now = self.clock()
        times = self._times
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) >= self.limit:
            return self.window - (now - times[0])
        if len(times) >= self.limit // 2:
            # Spread the second half of the budget evenly over the window.
            spacing = self.window / self.limit
            return max(0.0, spacing - (now - times[-1]))
        return 0.0


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff: delay = uniform(0, min(cap, initial * 2**n))."""

    initial: float = BACKOFF_INITIAL_SECONDS
    cap: float = BACKOFF_MAX_SECONDS
    rand: Callable[[], float] = random.random
    attempts: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt, counting the attempt."""
        ceiling = min(self.cap, self.initial * (2**self.attempts))
        self.attempts += 1
        delay: float = self.rand() * ceiling
        return delay

    def healthy(self) -> None:
        """The last connection handshook and delivered trades: start over from `initial`."""
        self.attempts = 0


def no_wait() -> Backoff:
    """A backoff that never waits (tests)."""
    return Backoff(initial=0.0, cap=0.0)
