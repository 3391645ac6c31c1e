"""Faults on our side: PostgreSQL stopped hard mid-stream, and the ingestor killed with SIGKILL.

The PostgreSQL tests stop the session's embedded server (`pg_ctl stop -m immediate`, a crash)
and always start it again in a `finally`, so they need the embedded server, not an external
BINPRICE_TEST_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from types import SimpleNamespace

import psycopg

from binprice.db.gaps import list_gaps
from binprice.exchange.backoff import Backoff
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import IngestConfig, run_ingest
from binprice.ingest.recorder import Recorder
from binprice.ingest.stats import IngestSummary
from binprice.testing.exchange import TestExchange
from tests.fault_helpers import (
    HANG_GUARD_SECONDS,
    CommitReplyCutter,
    assert_complete,
    ingest_until,
    needs_embedded,
    postgres_down,
    wait_until,
)
from tests.ingest_helpers import spawn_logged_ingest

SYMBOLS = ("BTCUSDT", "ETHUSDT")
RATE = 1000


def _policy() -> StreamPolicy:
    return StreamPolicy(backoff=lambda: Backoff(initial=0.0, cap=0.0))


def _config(ex: TestExchange, tmp_path: Path, **kw: object) -> IngestConfig:
    return IngestConfig(
        symbols=SYMBOLS,
        ws_url=ex.ws_url,
        rest_url=ex.rest_url,
        spool_dir=tmp_path / "spool",
        memory_limit=1000,
        max_batch=500,
        **kw,  # type: ignore[arg-type]
    )


def _stored_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM trades").fetchone()
    return int(row[0]) if row else 0


async def _start(
    ex: TestExchange, url: str, tmp_path: Path, stop: asyncio.Event, stats: Recorder
) -> asyncio.Task[IngestSummary]:
    """Start a run and return once it stored 1000 trades."""
    config = _config(ex, tmp_path)
    run = asyncio.create_task(run_ingest(config, url, stop=stop, recorder=stats, policy=_policy()))
    await wait_until(lambda: stats.summary().stored >= 1000, 20)
    return run


def _down_long_enough(stats: Recorder) -> bool:
    """The run saw the database down, its writers failed more than once (they retried), and the
    reader went on into the spool."""
    snapshot = stats.snapshot()
    return snapshot.db_down and snapshot.summary.db_errors >= 2 and snapshot.spilled_chunks > 0


@needs_embedded
async def test_postgres_stopped_hard_mid_stream(
    database_url: str, pg_data_dir: Path, tmp_path: Path
) -> None:
    """PostgreSQL crashes and stays down until the writers have retried and the reader has
    spooled: the reader keeps reading (into the fsynced spool), the writers retry, and after
    the restart every produced id is stored exactly once."""
    stats = Recorder()
    stop = asyncio.Event()
    async with TestExchange(SYMBOLS, seed=31, rate=RATE) as ex:
        run = await _start(ex, database_url, tmp_path, stop, stats)
        async with postgres_down(pg_data_dir):
            await wait_until(lambda: _down_long_enough(stats), HANG_GUARD_SECONDS)
            spilled_while_down = stats.snapshot().spilled_chunks
            received_while_down = sum(c.received for c in stats.summary().symbols)
        await wait_until(
            lambda: not stats.snapshot().db_down and stats.summary().stored >= received_while_down,
            30,
        )
        stop.set()
        summary = await asyncio.wait_for(run, 30)
        assert_complete("postgres-down", ex, database_url, SYMBOLS, summary)
    assert spilled_while_down > 0
    assert summary.db_errors > 0
    assert summary.reconnects == 0  # the stream never noticed
    assert not list((tmp_path / "spool").rglob("*.spool"))


def _replayed_and_filled(s: IngestSummary, tmp_path: Path, url: str) -> bool:
    """The spool is committed and the downtime backfilled, its gap marked filled."""
    if s.backfilled == 0 or list((tmp_path / "spool").rglob("*.spool")):
        return False
    with psycopg.connect(url) as conn:
        return any(g.state == "filled" for g in list_gaps(conn))


@needs_embedded
async def test_spool_left_by_a_stop_during_an_outage_is_replayed_at_the_next_start(
    database_url: str, pg_data_dir: Path, tmp_path: Path
) -> None:
    """Stopped while PostgreSQL is down: received trades stay in the spool; the next run
    replays them, backfills the downtime, and nothing is lost or stored twice."""
    stats = Recorder()
    stop = asyncio.Event()
    async with TestExchange(SYMBOLS, seed=32, rate=RATE) as ex:
        run = await _start(ex, database_url, tmp_path, stop, stats)
        async with postgres_down(pg_data_dir):
            # A second of market while the database is down: received, spooled, uncommitted.
            await ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + RATE)
            stop.set()
            first = await asyncio.wait_for(run, 30)
            spooled = list((tmp_path / "spool").rglob("*.spool"))
        assert spooled
        assert first.received > first.stored
        # Downtime: a second of trades only REST can give back.
        await ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + RATE)
        second = await ingest_until(
            _config(ex, tmp_path),
            database_url,
            lambda s: _replayed_and_filled(s, tmp_path, database_url),
            policy=_policy(),
        )
        numbers = assert_complete(
            "stop-during-outage-then-restart", ex, database_url, SYMBOLS, second
        )
    assert not list((tmp_path / "spool").rglob("*.spool"))
    assert second.backfilled > 0
    assert numbers["gaps_filled"] >= 1


async def test_sigkill_mid_stream_then_restart_resumes_and_backfills(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """`binprice ingest` killed with SIGKILL, restarted 1.5 s later: it resumes after the last
    stored id, fetches the downtime from REST, and every id is stored exactly once."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(SYMBOLS, seed=33, rate=RATE) as ex:
        first = await spawn_logged_ingest(ex, database_url, env, *SYMBOLS)
        await wait_until(lambda: _stored_count(database_url) >= 1500, 60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        killed_at = _stored_count(database_url)
        await ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + int(1.5 * RATE))
        second = await spawn_logged_ingest(ex, database_url, env, *SYMBOLS)
        await wait_until(lambda: _stored_count(database_url) >= killed_at + 4 * RATE, 60)
        second.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(second.communicate(), 20)
        assert second.returncode == 0, err.decode()[-2000:]
        final = next(json.loads(x) for x in err.decode().splitlines() if '"final"' in x)
        numbers = assert_complete(
            "sigkill-restart",
            ex,
            database_url,
            SYMBOLS,
            SimpleNamespace(**final),  # type: ignore[arg-type]
        )
    assert first.returncode == -signal.SIGKILL
    assert numbers["gaps_filled"] >= 2  # the downtime of each symbol
    assert numbers["gaps_filled"] + numbers["tail_gaps_open"] == numbers["gaps_recorded"]
    assert b'"event": "gap"' in err


async def test_a_commit_whose_answer_is_lost_is_counted_once_it_is_known_to_have_committed(
    database_url: str, tmp_path: Path
) -> None:
    """The server commits a batch but its answer never reaches the writer (the connection
    dies in between): the writer asks the server before writing the batch again, so the
    run's `stored` is exactly what the table gained, and every id is stored once."""
    stats = Recorder()
    stop = asyncio.Event()
    async with (
        TestExchange(SYMBOLS, seed=34, rate=RATE) as ex,
        CommitReplyCutter(database_url) as proxy,
    ):
        config = _config(ex, tmp_path)
        run = asyncio.create_task(
            run_ingest(config, proxy.url, stop=stop, recorder=stats, policy=_policy())
        )
        await wait_until(lambda: stats.summary().stored >= 500, 20)
        proxy.armed = True
        await asyncio.wait_for(proxy.cut.wait(), 20)
        cut_at = stats.summary().stored
        await wait_until(lambda: stats.summary().stored >= cut_at + 1000, 20)
        stop.set()
        summary = await asyncio.wait_for(run, 30)
        assert_complete("commit-answer-lost", ex, database_url, SYMBOLS, summary)
    assert summary.stored == _stored_count(database_url)


async def test_a_deadlock_between_two_writers_is_a_conflict_not_an_outage(
    database_url: str,
) -> None:
    """Two writers storing the same two trades in opposite order deadlock (40P01): the
    writer's error is classified as a conflict to retry, not as the database being down,
    and the retry stores the batch once the other writer is gone."""
    from decimal import Decimal

    from binprice.db.copy import COPY_TRADES, CopyEncoder
    from binprice.db.writer import TradeWriter
    from binprice.exchange.protocol import WireTrade
    from binprice.ingest.sink import is_conflict

    t1, t2 = (
        WireTrade("BTCUSDT", i, Decimal("1"), Decimal("1"), 1_700_000_000_000, True) for i in (1, 2)
    )
    encoder = CopyEncoder()
    other = await psycopg.AsyncConnection.connect(database_url)
    writer = await TradeWriter.connect(database_url)
    try:
        # The other writer waits long before it looks for deadlocks, so ours is the victim.
        await other.execute("SET deadlock_timeout = '60s'")

        async def other_copies(trade: WireTrade) -> None:
            async with other.cursor() as cur, cur.copy(COPY_TRADES) as copy:
                await copy.write(encoder.encode([trade]))

        await other_copies(t2)
        ours = asyncio.create_task(writer.write(encoder.batch([t1, t2])))
        await wait_until(lambda: _waiting_on_lock(database_url), 20)  # ours waits for t2's lock
        await other_copies(t1)
        try:
            await asyncio.wait_for(ours, 30)
        except psycopg.Error as exc:
            failure: psycopg.Error | None = exc
        else:
            failure = None
        assert failure is not None and failure.sqlstate == "40P01"
        assert is_conflict(failure)
        assert not is_conflict(psycopg.OperationalError("server closed the connection"))
        await other.rollback()
        inserted, _ = await writer.write(encoder.batch([t1, t2]))
        assert inserted == {"BTCUSDT": 2}
    finally:
        await other.close()
        await writer.close()


def _waiting_on_lock(url: str) -> bool:
    """Whether a session of the test's database waits for a lock (a state with no event)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])
