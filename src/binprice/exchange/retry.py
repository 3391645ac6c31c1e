"""Retries, one mechanism for all of them: tenacity, for REST requests and database writes.

Each retrying operation raises one of the exception types below for what is worth another try;
the policy here decides how long to wait. Waits are exponential with full jitter (so many
clients never retry in step), capped, and — for REST — replaced by the server's own
`Retry-After` when it gives one (continuing before it ends gets the IP banned). The sleep is a
parameter: tests switch the waits off with one that returns at once, and the writers use one
that returns early when the database is back.

Stream connections are not retried here: each attempt counts against Binance's 300 per 5
minutes, so they have a backoff and a budget of their own (`backoff.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

Sleep = Callable[[float], Awaitable[None]]

#: REST: the first retry waits up to half a second, later ones up to 30 s.
REST_WAIT_INITIAL_SECONDS = 0.5
REST_WAIT_MAX_SECONDS = 30.0


class Transient(Exception):
    """A failure worth another try (network error, HTTP 5xx); the message says which."""


class RateLimited(Transient):
    """HTTP 429/418: try again, but not before `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float, status: int = 429) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


def _rest_wait(backoff: Callable[[RetryCallState], float]) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, RateLimited):
            return failure.retry_after
        return backoff(state)

    return wait


def rest_retrying(attempts: int, sleep: Sleep) -> AsyncRetrying:
    """At most `attempts` tries of a REST request; `Transient` failures are retried."""
    backoff = wait_random_exponential(
        multiplier=REST_WAIT_INITIAL_SECONDS, max=REST_WAIT_MAX_SECONDS
    )
    return AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(attempts),
        wait=_rest_wait(backoff),
        retry=retry_if_exception_type(Transient),
        reraise=True,
    )


def write_retrying(
    retry_on: tuple[type[BaseException], ...],
    *,
    initial: float,
    maximum: float,
    sleep: Sleep,
    give_up: Callable[[], bool],
    before_sleep: Callable[[BaseException], Awaitable[None]],
) -> AsyncRetrying:
    """Retry a database write through an outage, for as long as `give_up()` says no.

    `before_sleep` sees each failure (to count it and drop the broken connection).
    """

    async def noted(state: RetryCallState) -> None:
        if state.outcome is not None and (failure := state.outcome.exception()) is not None:
            await before_sleep(failure)

    return AsyncRetrying(
        sleep=sleep,
        stop=lambda state: give_up(),
        wait=wait_random_exponential(multiplier=initial, max=maximum),
        retry=retry_if_exception_type(retry_on),
        before_sleep=noted,
        reraise=True,
    )
