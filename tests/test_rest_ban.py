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
from binprice.errors import ExchangeBannedError, ExchangeUnavailableError
from binprice.events import EventKind
from binprice.exchange.backoff import no_wait
from binprice.exchange.bans import FILE_NAME, BanBook, Refusal
from binprice.exchange.rest import ONE_OFF_BAN_WAIT_SECONDS, RestClient
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import IngestConfig, run_ingest
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from tests.fault_helpers import wait_until
from tests.ingest_helpers import Events
from tests.test_completeness_db import _binprice
from tests.trades_data import SMALL, load

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
        ex.rest.clock = lambda: clock[0]  # the exchange's ban runs on the client's clock
        await ex.wait_produced("BTCUSDT", 0)

        async def sleep(seconds: float) -> None:
            seen_at_sleep.append(ex.rest.requests.total())
            clock[0] += seconds

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
        config = IngestConfig(
            symbols=SYMBOLS, ws_url=ex.ws_url, rest_url=ex.rest_url, spool_dir=tmp_path / "spool"
        )
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
    print(
        f"\nBAN requests at the 418: {at_ban}, after it until stopped: "
        f"{ex.rest.requests.total() - at_ban}; stop said: {said}"
    )
    with psycopg.connect(database_url) as conn:
        assert [g for g in list_gaps(conn) if g.state == "open"]


async def test_a_ban_one_process_saw_holds_back_another_with_the_same_data_dir(
    tmp_path: Path,
) -> None:
    """Two clients with their own BanBook on one file (two processes): after the first is
    banned, a one-off caller refuses at once and a long-running one waits, neither sending."""
    clock = [2_000_000.0]
    faults = Faults(retry_after_seconds=BAN_SECONDS)
    book_file = tmp_path / "data" / FILE_NAME
    async with TestExchange(["BTCUSDT"], max_trades=100, faults=faults) as ex:
        ex.rest.clock = lambda: clock[0]  # the exchange's ban runs on the clients' clock
        await ex.wait_produced("BTCUSDT", 0)
        waits: list[tuple[float, int]] = []

        async def sleep(seconds: float) -> None:
            waits.append((seconds, ex.rest.requests.total()))
            clock[0] += seconds

        async with aiohttp.ClientSession() as session:

            def client(max_wait: float | None) -> RestClient:
                return RestClient(
                    session,
                    ex.rest_url,
                    sleep=sleep,
                    clock=lambda: clock[0],
                    bans=BanBook(book_file),
                    max_ban_wait=max_wait,
                )

            faults.rest_418_next = 1
            with pytest.raises(ExchangeBannedError, match=r"banned this IP \(HTTP 418\) until"):
                await client(ONE_OFF_BAN_WAIT_SECONDS).historical_trades("BTCUSDT", 1, 3)
            assert ex.rest.requests.total() == 1
            assert book_file.stat().st_mode & 0o777 == 0o600

            one_off = client(ONE_OFF_BAN_WAIT_SECONDS)
            with pytest.raises(ExchangeBannedError) as refused:
                await one_off.newest_trade_id("BTCUSDT")
            assert refused.value.until == pytest.approx(2_000_000.0 + BAN_SECONDS)
            assert ex.rest.requests.total() == 1 and waits == []

            long_running = client(None)
            assert long_running.refused_with == 418
            await long_running.newest_trade_id("BTCUSDT")
    assert waits == [(pytest.approx(BAN_SECONDS), 1)]  # waited it out, then sent
    assert ex.rest.requests.total() == 2
    assert ex.rest.budget.during_ban == 0


def test_a_ban_book_ignores_a_damaged_file_and_keeps_the_longest_refusal(tmp_path: Path) -> None:
    """A file that is not the book's JSON is ignored (the process keeps its own refusals);
    a shorter refusal never replaces a longer one; ended ones are dropped when writing."""
    path = tmp_path / FILE_NAME
    path.write_text("{not json")
    book = BanBook(path)
    assert book.get("api.binance.com", "REQUEST_WEIGHT") is None
    book.record("api.binance.com", "REQUEST_WEIGHT", Refusal(1_000.0, 429), now=900.0)
    book.record("api.binance.com", "REQUEST_WEIGHT", Refusal(950.0, 418), now=900.0)
    book.record("old.example", "REQUEST_WEIGHT", Refusal(800.0, 418), now=900.0)
    other = BanBook(path)  # another process reads what this one wrote
    assert other.get("api.binance.com", "REQUEST_WEIGHT") == Refusal(1_000.0, 429)
    assert other.get("old.example", "REQUEST_WEIGHT") is None
    book.record("api.binance.com", "REQUEST_WEIGHT", Refusal(5_000.0, 418), now=1_200.0)
    assert other.get("api.binance.com", "REQUEST_WEIGHT") == Refusal(5_000.0, 418)


async def test_gaps_commands_after_a_ban_say_until_when_and_send_nothing_more(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """The real CLI: `gaps --verify --against-exchange` banned by a 418 says until when (one
    line, exit 1); a later `gaps --repair` (another process) sends no request at all."""
    load(database_url, SMALL)
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path / "data")}
    faults = Faults(retry_after_seconds=BAN_SECONDS)
    async with TestExchange(["BTCUSDT"], max_trades=100, faults=faults) as ex:
        await ex.wait_produced("BTCUSDT", 0)
        faults.rest_418_next = 1
        base = ("--database-url", database_url, "gaps", "BTCUSDT", "--rest-url", ex.rest_url)
        code, out, err = await _binprice(env, *base, "--verify", "--against-exchange")
        assert (code, out) == (1, "")
        assert err.startswith("error: the exchange banned this IP (HTTP 418) until ")
        assert err.endswith("run this again after that\n") and err.count("\n") == 1
        assert ex.rest.requests.total() == 1
        code, out, err = await _binprice(env, *base, "--repair")
        assert code == 1 and "banned this IP (HTTP 418)" in err, out + err
        assert ex.rest.requests.total() == 1  # nothing sent by the second process
        assert ex.rest.budget.during_ban == 0
