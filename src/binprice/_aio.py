"""One asyncio idiom the pipeline needs in several places: wait for the first of several things."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


async def first_of(*aws: Awaitable[object]) -> None:
    """Wait until the first of these awaitables/tasks finishes.

    Awaitables passed as coroutines are wrapped here and cancelled afterwards; tasks passed in
    belong to their owner and are left running.
    """
    waiting: list[asyncio.Future[object]] = []
    created: list[asyncio.Future[object]] = []
    for aw in aws:
        if isinstance(aw, asyncio.Task):
            waiting.append(aw)
        else:
            future: asyncio.Future[object] = asyncio.ensure_future(aw)
            waiting.append(future)
            created.append(future)
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in created:
            pending.cancel()
