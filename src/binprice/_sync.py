"""Running binprice's coroutines from synchronous code (a script, a notebook's cell)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even under a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="binprice")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def bridge(source: threading.Event, target: asyncio.Event) -> asyncio.Task[None]:
    """Set `target` (on this loop) once `source` (any thread) is set."""

    async def watch() -> None:
        released = threading.Event()
        try:
            await asyncio.to_thread(_wait_either, source, released)
            if source.is_set():
                target.set()
        finally:
            released.set()

    return asyncio.ensure_future(watch())


async def stoppable(
    source: threading.Event | None, run: Callable[[asyncio.Event], Awaitable[T]]
) -> T:
    """`run(stop)` with an `asyncio.Event` that is set once `source` (any thread) is."""
    event = asyncio.Event()
    watcher = None if source is None else bridge(source, event)
    try:
        return await run(event)
    finally:
        if watcher is not None:
            watcher.cancel()


def _wait_either(a: threading.Event, b: threading.Event) -> None:
    while not (a.wait(0.1) or b.is_set()):
        pass
