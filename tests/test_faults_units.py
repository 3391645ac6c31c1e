"""The fault machinery in isolation: backoff, REST rate limits, log rate limiting, resumption."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from binprice.completeness.gapkeeper import HOLE_RECHECK_SECONDS, GapKeeper
from binprice.db.gaps import list_gaps, uncovered, verify_gaps
from binprice.errors import GeoRestrictedError
from binprice.events import NOISY_INTERVAL_SECONDS, EventKind, EventSink, IngestEvent
from binprice.exchange.backoff import ATTEMPT_LIMIT, ATTEMPT_WINDOW_SECONDS, AttemptBudget, Backoff
from binprice.exchange.rest import WEIGHT_LIMIT_PER_MINUTE, RestClient
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import IngestConfig
from binprice.ingest.recorder import Recorder
from binprice.ingest.resume import spooled_extent
from binprice.testing.connection import ConnectionLimits
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from tests.conftest import run_binprice
from tests.fault_helpers import HANG_GUARD_SECONDS, assert_complete, ingest_until, tail_gaps
from tests.ingest_helpers import stored_rows
from tests.test_faults_property import _Buffer, _trade


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_is_full_jitter_exponential_capped_and_reset_by_a_healthy_connection() -> None:
    """Delays are uniform in [0, min(cap, initial*2^n)]; a connection that handshook and
    delivered trades starts them over, however short its life was."""
    top = Backoff(initial=0.5, cap=60.0, rand=lambda: 1.0)
    assert [top.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    assert Backoff(rand=lambda: 0.0).next_delay() == 0.0
    top.healthy()
    assert top.next_delay() == 0.5


def test_attempt_budget_keeps_well_inside_binances_300_per_5_minutes() -> None:
    """Half the budget goes at once; then attempts are spread evenly over the window; at the
    limit the next attempt waits for the oldest to leave the window."""
    clock = _Clock()
    budget = AttemptBudget(clock=clock)
    assert ATTEMPT_LIMIT <= 200 < 300
    for _ in range(ATTEMPT_LIMIT // 2):
        assert budget.wait() == 0.0
        budget.record()
    spacing = ATTEMPT_WINDOW_SECONDS / ATTEMPT_LIMIT
    assert budget.wait() == pytest.approx(spacing)
    attempts = ATTEMPT_LIMIT // 2
    while budget.wait() < spacing * 2:  # spaced attempts, as a reconnect loop would make them
        clock.now += budget.wait()
        budget.record()
        attempts += 1
        if attempts > 10 * ATTEMPT_LIMIT:
            break
    assert attempts == ATTEMPT_LIMIT
    assert budget.wait() > spacing
    clock.now += ATTEMPT_WINDOW_SECONDS + 1
    assert budget.wait() == 0.0


def test_noisy_events_are_rate_limited_and_count_what_they_suppressed() -> None:
    """1000 malformed frames in a burst make one log line; the next says how many it hid."""
    seen: list[IngestEvent] = []
    clock = _Clock()
    sink = EventSink(seen.append, clock=clock)
    for _ in range(1000):
        sink(EventKind.MALFORMED, "bad frame")
    sink(EventKind.GAP, "not noisy")
    assert [e.kind for e in seen] == [EventKind.MALFORMED, EventKind.GAP]
    clock.now += NOISY_INTERVAL_SECONDS
    sink(EventKind.MALFORMED, "bad frame")
    assert seen[-1].message == "bad frame (+999 more since the last report)"


def test_every_event_kind_has_a_severity_and_quiet_shows_every_problem() -> None:
    """-q derives from severity: warnings and errors are problems, the rest is not."""
    problems = {k for k in EventKind if k.is_problem}
    assert {EventKind.DB_DOWN, EventKind.DROPPED, EventKind.BACKFILL_ERROR} <= problems
    assert {EventKind.GAP, EventKind.RECONNECT, EventKind.HOLE, EventKind.RECONCILED} <= problems
    assert EventKind.CONNECTED not in problems and EventKind.BACKFILL not in problems
    assert len({k.label for k in EventKind}) == len(EventKind)


async def test_rest_honours_retry_after_on_429_and_418() -> None:
    """418 then 429: the client sleeps Retry-After each time (through the injected sleep),
    then succeeds."""
    sleeps: list[float] = []
    clock = _Clock()

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds  # the exchange's ban and limit run on the same clock

    faults = Faults(rest_429_next=1, rest_418_next=1, retry_after_seconds=1)
    async with TestExchange(["BTCUSDT"], max_trades=100, faults=faults) as ex:
        ex.rest.clock = clock
        await ex.wait_produced("BTCUSDT", 0)
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, ex.rest_url, sleep=sleep, clock=clock)
            page = await rest.historical_trades("BTCUSDT", 1, attempts=5)
    assert page == []  # nothing produced without a stream reader
    assert sleeps == [1, 1]
    assert rest.rate_limited == 2


async def test_rest_pauses_before_the_used_weight_reaches_the_budget() -> None:
    """X-MBX-USED-WEIGHT-1M near the limit: the next request waits for the next minute."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    clock = _Clock()
    clock.now = 60 * 1000 + 30.0  # half way through a minute
    async with TestExchange(["BTCUSDT"]) as ex, aiohttp.ClientSession() as session:
        ex.rest.clock = clock
        ex.rest.budget.used = int(WEIGHT_LIMIT_PER_MINUTE * 0.8) - 10
        ex.rest.budget.window = int(clock() // 60)
        rest = RestClient(session, ex.rest_url, sleep=sleep, clock=clock)
        await rest.historical_trades("BTCUSDT", 1, attempts=1)  # learns the used weight
        assert sleeps == []
        await rest.historical_trades("BTCUSDT", 1, attempts=1)
    assert sleeps == [pytest.approx(30.1)]


async def test_rest_budget_follows_the_limit_exchange_info_declares() -> None:
    """An exchange allowing 1200 weight a minute (Binance.US): after its exchangeInfo, the
    client budgets 80 % of 1200, not of Binance's 6000."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    clock = _Clock()
    clock.now = 60 * 1000 + 45.0
    async with TestExchange(["BTCUSDT"], weight_limit=1200) as ex, aiohttp.ClientSession() as s:
        ex.rest.clock = clock
        rest = RestClient(s, ex.rest_url, sleep=sleep, clock=clock)
        await rest.validate_symbols(("BTCUSDT",))
        assert rest.weight_limit == 1200
        ex.rest.budget.used = int(1200 * 0.8) - 30
        ex.rest.budget.window = int(clock() // 60)
        await rest.historical_trades("BTCUSDT", 1, attempts=1)  # learns the used weight
        assert sleeps == []
        await rest.historical_trades("BTCUSDT", 1, attempts=1)
    assert sleeps == [pytest.approx(15.1)]
    assert rest.rate_limited == 0


async def test_rest_451_is_fatal_at_once() -> None:
    """HTTP 451 on REST is not retried and names the Binance.US preset."""
    faults = Faults(geo_block_rest=True)
    async with TestExchange(["BTCUSDT"], faults=faults) as ex, aiohttp.ClientSession() as session:
        with pytest.raises(GeoRestrictedError, match="binance-us"):
            await RestClient(session, ex.rest_url).historical_trades("BTCUSDT", 1, 5)


def test_uncovered_parts_of_a_range() -> None:
    """Coverage arithmetic of --verify: inclusive bounds, overlaps, unsorted input."""
    assert uncovered(10, 20, []) == ((10, 20),)
    assert uncovered(10, 20, [(10, 20)]) == ()
    assert uncovered(10, 20, [(15, 30), (0, 11)]) == ((12, 14),)
    assert uncovered(10, 20, [(12, 12), (14, 15)]) == ((10, 11), (13, 13), (16, 20))


def test_spooled_extent_finds_the_gaps_inside_the_spool() -> None:
    """Spooled ids above the last stored one: their top, and the ranges the spool lacks."""
    chunks = [[_trade(i) for i in (5, 6, 7, 11)], [_trade(i) for i in (12, 15, 3)]]
    assert spooled_extent(chunks, {"BTCUSDT": 4}) == {"BTCUSDT": (15, [(8, 10), (13, 14)])}
    assert spooled_extent(chunks, {}) == {"BTCUSDT": (15, [(4, 4), (8, 10), (13, 14)])}


#: Trades a first run stores past the gap row it is given (the row must lie inside them).
STORED_PAST_THE_GAP = 100


def _gap_filled(url: str, first_id: int) -> bool:
    with psycopg.connect(url) as conn:
        return any(g.first_id == first_id and g.state == "filled" for g in list_gaps(conn))


async def _run_then_unstore(
    ex: TestExchange, url: str, tmp_path: Path, state: str, extra: int
) -> tuple[IngestConfig, int, int]:
    """A first run; then 201 of its trades are deleted and a `state` gap row is recorded over
    them (and `extra` ids past them), as an earlier run could have left it."""
    config = IngestConfig(
        symbols=("BTCUSDT",), ws_url=ex.ws_url, rest_url=ex.rest_url, spool_dir=tmp_path / "spool"
    )
    await ingest_until(config, url, lambda s: s.stored >= 300 + extra + STORED_PAST_THE_GAP)
    with psycopg.connect(url) as conn:
        low, _ = conn.execute("SELECT min(trade_id), max(trade_id) FROM trades").fetchone()  # type: ignore[misc]
        a, b = low + 100, low + 300
        conn.execute("DELETE FROM trades WHERE trade_id BETWEEN %s AND %s", (a, b))
        conn.execute(
            "INSERT INTO gaps (symbol, first_id, last_id, state) VALUES ('BTCUSDT', %s, %s, %s)",
            (a, b + extra, state),
        )
        assert not verify_gaps(conn).symbols[0].unaccounted  # the row accounts for the ids
    return config, a, b


async def test_open_gap_left_by_an_earlier_run_is_fetched_at_the_next_start(
    database_url: str, tmp_path: Path
) -> None:
    """A run that stopped before its backfill finished leaves an open gap (and its hole in
    the table); the next start fetches just the missing ids and marks the gap filled."""
    async with TestExchange(["BTCUSDT"], seed=41, rate=1000) as ex:
        config, a, _ = await _run_then_unstore(ex, database_url, tmp_path, "open", 50)
        await ingest_until(
            config, database_url, lambda _: _gap_filled(database_url, a), policy=StreamPolicy()
        )
        assert_complete("resume-open-gap", ex, database_url, ("BTCUSDT",))
        with psycopg.connect(database_url) as conn:
            states = {(g.first_id, g.state) for g in list_gaps(conn)}
    assert (a, "filled") in states


async def test_a_false_hole_left_by_an_earlier_run_is_asked_again_and_fetched(
    database_url: str, tmp_path: Path
) -> None:
    """A `hole` recorded over ids the exchange has (an empty page once made one): the next
    run asks the exchange again, reopens it and fetches every id; the gap ends filled."""
    async with TestExchange(["BTCUSDT"], seed=43, rate=1000) as ex:
        config, a, b = await _run_then_unstore(ex, database_url, tmp_path, "hole", 0)
        events: list[IngestEvent] = []
        await ingest_until(
            config,
            database_url,
            lambda _: _gap_filled(database_url, a),
            policy=StreamPolicy(),
            on_event=events.append,
        )
        assert_complete("recheck-false-hole", ex, database_url, ("BTCUSDT",))
        with psycopg.connect(database_url) as conn:
            states = {(g.first_id, g.last_id): g.state for g in list_gaps(conn)}
    assert states[(a, b)] == "filled"
    assert any(f"trades {a}..{b} were recorded as a hole" in e.message for e in events)


class _QuietBuffer(_Buffer):
    """The keeper's buffer with nothing ever dropped."""

    spool_error = None

    def __init__(self) -> None:
        super().__init__()
        self.dropped_ready = asyncio.Event()

    def take_dropped(self) -> dict[str, list[tuple[int, int]]]:
        return {}


class _EmptyPages:
    """historicalTrades that answers every page empty (proof of nothing), saying what it was
    asked."""

    rate_limited = 0

    def __init__(self) -> None:
        self.asked: list[int] = []

    async def historical_trades(self, symbol: str, from_id: int, attempts: int) -> list[Any]:
        self.asked.append(from_id)
        return []


async def test_holes_are_asked_about_again_one_per_interval_of_the_injected_sleep(
    database_url: str,
) -> None:
    """Holes earlier runs recorded are asked about again, one per HOLE_RECHECK_SECONDS, the
    first at once; the keeper waits through the sleep it was given, never the real clock."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO gaps (symbol, first_id, last_id, state) "
            "VALUES ('BTCUSDT', 110, 114, 'hole'), ('BTCUSDT', 130, 139, 'hole')"
        )
    slept: list[float] = []
    both = asyncio.Event()
    never = asyncio.Event()  # what a sleep that must not end waits on

    async def sleep(seconds: float) -> None:
        """No time passes: a recheck interval ends at once until both holes were asked about;
        then, like every other interval (the settle loop's), it never ends."""
        slept.append(seconds)
        if seconds == HOLE_RECHECK_SECONDS and slept.count(seconds) < 2:
            return
        if seconds == HOLE_RECHECK_SECONDS:
            both.set()
        await never.wait()

    keeper = GapKeeper(database_url, _QuietBuffer(), Recorder(), backfill_max=None, sleep=sleep)
    exchange = _EmptyPages()
    writable = asyncio.Event()
    writable.set()
    try:
        await keeper.resume(["BTCUSDT"])
        running = asyncio.create_task(keeper.run(exchange, writable))  # type: ignore[arg-type]
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            await both.wait()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    finally:
        await keeper.close()
    assert sorted(exchange.asked) == [110, 130]
    with psycopg.connect(database_url) as conn:
        assert {(g.first_id, g.state) for g in list_gaps(conn)} == {(110, "hole"), (130, "hole")}


def _seed(url: str) -> None:
    with psycopg.connect(url) as conn:
        for tid in [*range(100, 110), *range(115, 120), *range(130, 140)]:
            conn.execute("INSERT INTO trades VALUES ('BTCUSDT', %s, 1, 1, now(), true)", (tid,))
        conn.execute(
            "INSERT INTO gaps (symbol, first_id, last_id, state) "
            "VALUES ('BTCUSDT', 110, 114, 'hole')"
        )


def test_gaps_cli_lists_and_verify_fails_on_an_unaccounted_hole(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """`gaps` lists the recorded gap; `--verify` exits 1 naming 120..129, then 0 once it is
    recorded (as skipped)."""
    _seed(database_url)
    listed = run_binprice("--database-url", database_url, "gaps", "--json", env=clean_env)
    assert listed.returncode == 0, listed.stderr
    (gap,) = json.loads(listed.stdout)
    assert (gap["first_id"], gap["last_id"], gap["state"], gap["size"]) == (110, 114, "hole", 5)
    bad = run_binprice("--database-url", database_url, "gaps", "--verify", env=clean_env)
    assert bad.returncode == 1
    assert "unaccounted: BTCUSDT 120..129 (10 ids)" in bad.stdout
    assert "BTCUSDT: NOT OK" in bad.stdout
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO gaps (symbol, first_id, last_id, state) "
            "VALUES ('BTCUSDT', 120, 129, 'skipped')"
        )
    good = run_binprice(
        "--database-url",
        database_url,
        "gaps",
        "btcusdt",
        "--verify",
        "--last",
        "1h",
        "--json",
        env=clean_env,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] is True
    assert report["symbols"][0]["missing"] == 15 and report["symbols"][0]["unaccounted"] == 0
    text = run_binprice("--database-url", database_url, "gaps", env=clean_env)
    assert "skipped" in text.stdout and "hole" in text.stdout


def test_gaps_cli_says_so_when_no_gap_is_recorded(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """No recorded gap: one line on stderr pointing at --verify, exit 0; --json gives []."""
    plain = run_binprice("--database-url", database_url, "gaps", env=clean_env)
    assert plain.returncode == 0
    assert plain.stdout == ""
    assert plain.stderr.startswith("no gaps recorded")
    as_json = run_binprice("--database-url", database_url, "gaps", "--json", env=clean_env)
    assert json.loads(as_json.stdout) == []


BACKFILL_MAX = 500


async def test_backfill_max_records_the_older_part_of_a_long_downtime_as_skipped(
    database_url: str, tmp_path: Path
) -> None:
    """Restarted after ~1500 ids with --backfill-max 500: the newest 500 are fetched, the
    rest recorded as skipped, and verify accounts for them."""
    async with TestExchange(["BTCUSDT"], seed=42, rate=1000) as ex:
        base = IngestConfig(
            symbols=("BTCUSDT",),
            ws_url=ex.ws_url,
            rest_url=ex.rest_url,
            spool_dir=tmp_path / "spool",
        )
        await ingest_until(base, database_url, lambda s: s.stored >= BACKFILL_MAX)
        # A downtime of ~1500 ids (the exchange goes on at 1000/s).
        await ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 1500)
        again = IngestConfig(
            symbols=("BTCUSDT",),
            ws_url=ex.ws_url,
            rest_url=ex.rest_url,
            spool_dir=tmp_path / "spool",
            backfill_max=BACKFILL_MAX,
        )
        # Until the newest 500 of the downtime are fetched and the rest recorded as skipped.
        summary = await ingest_until(
            again, database_url, lambda s: s.skipped > 0 and s.backfilled >= BACKFILL_MAX
        )
    with psycopg.connect(database_url) as conn:
        recorded = list_gaps(conn)
        verification = verify_gaps(conn)
    tails = tail_gaps(recorded, stored_rows(database_url))
    gaps = [g for g in recorded if g not in tails]
    # The downtime, and (when the exchange answered in the stop's bounded tail check, which a
    # loaded machine may not) the first run's tail, filled by the second run.
    assert sorted(g.state for g in gaps) in (["filled", "skipped"], ["filled", "filled", "skipped"])
    (skipped,) = [g for g in gaps if g.state == "skipped"]
    (filled,) = [g for g in gaps if g.state == "filled" and g.first_id == skipped.last_id + 1]
    assert filled.size == 500
    assert summary.skipped == skipped.size > 500
    assert verification.ok
    print(f"\nFAULT backfill-max-500: skipped={skipped.size} filled={filled.size}")


async def test_close_1008_is_retried_not_fatal(database_url: str, tmp_path: Path) -> None:
    """A policy-violation close (1008, e.g. too many streams) ends the connection, not the run."""
    limits = ConnectionLimits(max_streams=1)
    async with TestExchange(["BTCUSDT", "ETHUSDT"], rate=100, limits=limits) as ex:
        config = IngestConfig(
            symbols=("BTCUSDT", "ETHUSDT"),
            ws_url=ex.ws_url,
            rest_url=ex.rest_url,
            spool_dir=tmp_path / "spool",
        )
        policy = StreamPolicy(backoff=lambda: Backoff(initial=0.0, cap=0.05))
        summary = await ingest_until(
            config, database_url, lambda s: s.reconnects >= 2, policy=policy
        )
    assert summary.reconnects >= 2
