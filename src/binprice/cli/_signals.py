"""The CLI owns the signals: one runner for the long commands (`ingest`, `import`).

The first SIGINT/SIGTERM sets the run's stop event (the library finishes what it must and
returns its summary); a second one cancels the run at once, which is an AbortedError with the
command's own words about what was left. The library only ever sees the event, so tests stop
it without signals.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from binprice.errors import AbortedError

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_until_signalled(
    main: Callable[[asyncio.Event], Coroutine[Any, Any, T]],
    *,
    on_stop: Callable[[], None],
    aborted: str,
) -> T:
    """Run `main(stop)` on a new event loop; `on_stop` says so when the first signal sets
    `stop`; a second signal aborts with `aborted` as the error's message."""

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()

        def on_signal() -> None:
            if not stop.is_set():
                on_stop()
                stop.set()
            elif task is not None:
                task.cancel()

        for signum in SIGNALS:
            loop.add_signal_handler(signum, on_signal)
        try:
            return await main(stop)
        finally:
            for signum in SIGNALS:
                loop.remove_signal_handler(signum)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        raise AbortedError(aborted) from None
