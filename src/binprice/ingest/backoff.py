"""Reconnect pacing: exponential backoff with full jitter, capped, reset after a healthy period.

Binance allows 300 connection attempts per 5 minutes per IP; a reconnect loop without backoff
burns that in seconds and gets the IP banned. The policy and its randomness are parameters so
tests run with zero delay.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 60.0
#: A connection that stayed up this long resets the backoff to its initial value.
HEALTHY_SECONDS = 60.0
#: Binance: 300 connection attempts per 5 minutes per IP. We keep a margin for other clients.
ATTEMPT_WINDOW_SECONDS = 300.0
ATTEMPT_LIMIT = 250


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff: delay = uniform(0, min(cap, initial * 2**n))."""

    initial: float = BACKOFF_INITIAL_SECONDS
    cap: float = BACKOFF_MAX_SECONDS
    healthy_after: float = HEALTHY_SECONDS
    rand: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic
    attempts: int = 0
    _window: deque[float] = field(default_factory=deque)

    def next_delay(self) -> float:
        """The wait before the next attempt, counting the attempt."""
        ceiling = min(self.cap, self.initial * (2**self.attempts))
        self.attempts += 1
        delay: float = self.rand() * ceiling
        return max(delay, self._attempt_budget_wait())

    def connected(self, since: float) -> None:
        """A connection made at `since` (clock time) ended; reset if it was healthy."""
        if self.clock() - since >= self.healthy_after:
            self.attempts = 0

    def record_attempt(self) -> None:
        self._window.append(self.clock())

    def _attempt_budget_wait(self) -> float:
        now = self.clock()
        while self._window and now - self._window[0] > ATTEMPT_WINDOW_SECONDS:
            self._window.popleft()
        if len(self._window) < ATTEMPT_LIMIT:
            return 0.0
        return ATTEMPT_WINDOW_SECONDS - (now - self._window[0])


def no_wait() -> Backoff:
    """A backoff that never waits (tests)."""
    return Backoff(initial=0.0, cap=0.0)
