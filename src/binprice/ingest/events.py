"""Events an ingest run reports (connected, gap, reconnect, ...), for logs and the live view."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IngestEvent:
    """One thing worth a log line."""

    time: float
    kind: str
    message: str


#: How the pipeline reports: emit(kind, message).
Emit = Callable[[str, str], None]
#: At most one event of a noisy kind (malformed, error_frame) per this many seconds.
NOISY_KINDS = frozenset({"malformed", "error_frame"})
NOISY_INTERVAL_SECONDS = 10.0


class EventSink:
    """Rate-limits noisy kinds and forwards the rest to a callback."""

    def __init__(self, callback: Callable[[IngestEvent], None] | None) -> None:
        self._callback = callback
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, kind: str, message: str) -> None:
        if self._callback is None:
            return
        now = time.time()
        if kind in NOISY_KINDS:
            if now - self._last.get(kind, 0.0) < NOISY_INTERVAL_SECONDS:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            skipped = self._suppressed.pop(kind, 0)
            if skipped:
                message += f" (+{skipped} more since the last report)"
        self._callback(IngestEvent(now, kind, message))
