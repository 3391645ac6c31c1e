"""A 418 ban or a 429's Retry-After is honoured by every request of the client, the stop's too:
asking before it ends is what makes Binance escalate a ban from minutes to days. Requests are
counted at the test exchange."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import psycopg
import pytest

from binprice.db.gaps import list_gaps
from binprice.errors import ExchangeUnavailableError
from binprice.ingest import IngestConfig, run_ingest
from binprice.ingest.backoff import no_wait
from binprice.ingest.events import EventKind
from binprice.ingest.rest import RestClient
from binprice.ingest.stream import StreamPolicy
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from tests.fault_helpers import wait_until
from tests.ingest_helpers import Events

SYMBOLS = ("BTCUSDT", "ETHUSDT")
BAN_SECONDS = 300


@pytest.mark.parametrize("status", [418, 429], ids=["ban-418", "limit-429"])
async def test_a_retry_after_holds_back_every_caller_until_its_time(status: int) -> None:
    """After a 418 (or 429) with Retry-After 300 another caller's request waits for the
    not-before time (on the injected clock) before anything reaches the exchange again."""
    clock = [1_000_000.0]
    seen_at_sleep: list[int] = []
    faults = Faults(retry_after_seconds=BAN_SECONDS)
    async with TestExchange(["BTCUSDT"], max_trades=100, faults=faults) as ex:
        await ex.wait_produced("BTCUSDT", 0)

        async def sleep(seconds: float) -> None:
            seen_at_sleep.append(ex.rest.requests.total())
            clock[0] += seconds
            ex.rest.budget.banned_until = ex.rest.budget.limited_until = 0.0  # time has passed

        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, ex.rest_url, sleep=sleep, clock=lambda: clock[0])
            if status == 418:
                faults.rest_418_next = 1
            else:
                faults.rest_429_next = 1
            with pytest.raises(ExchangeUnavailableError, match=f"HTTP {status}"):
                await rest.historical_trades("BTCUSDT", 1, attempts=1)
            assert ex.rest.requests.total() == 1
            assert await rest.newest_trade_id("BTCUSDT") is None  # another caller, later
    assert seen_at_sleep == [1]  # it waited before sending: nothing reached the exchange
    assert clock[0] >= 1_000_000.0 + BAN_SECONDS
    assert ex.rest.requests.total() == 2
    assert ex.rest.budget.during_ban == ex.rest.budget.during_limit == 0


async def test_a_stop_during_a_ban_sends_nothing_and_says_what_it_leaves_open(
    database_url: str, tmp_path: Path
) -> None:
    """A backfill page answered 418 with Retry-After 300, then a stop: no REST request reaches
    the exchange after the ban (no drain, no tail check); the stop says so and the gaps it
    could not fetch stay recorded as open."""
    faults = Faults(retry_after_seconds=BAN_SECONDS)
    events = Events()
    stop = asyncio.Event()
    async with TestExchange(SYMBOLS, seed=31, rate=1500, faults=faults) as ex:
        config = IngestConfig(symbols=SYMBOLS, ws_url=ex.ws_url, rest_url=ex.rest_url,
                              spool_dir=tmp_path / "spool")  # fmt: skip
        policy = StreamPolicy(backoff=no_wait)
        run = asyncio.create_task(
            run_ingest(config, database_url, stop=stop, on_event=events, policy=policy)
        )
        await asyncio.wait_for(ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 500), 20)
        faults.rest_418_next = 1
        faults.skip_next = 400  # gaps on the stream: the backfill asks, and is banned
        await wait_until(lambda: ex.rest.budget.banned_until > 0, 20)
        at_ban = ex.rest.requests.total()
        # More gaps while banned: the stop would have them to fetch.
        faults.skip_next = 50
        await asyncio.wait_for(ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 500), 20)
        stop.set()
        await asyncio.wait_for(run, 30)
    assert ex.rest.requests.total() == at_ban, ex.rest.requests
    assert ex.rest.budget.during_ban == 0
    (said,) = [e.message for e in events.seen if e.kind is EventKind.RATE_LIMITED]
    assert "HTTP 418, IP banned" in said and "stay recorded as open for the next run" in said
    print(f"\nBAN requests at the 418: {at_ban}, after it until stopped: "
          f"{ex.rest.requests.total() - at_ban}; stop said: {said}")  # fmt: skip
    with psycopg.connect(database_url) as conn:
        assert [g for g in list_gaps(conn) if g.state == "open"]
