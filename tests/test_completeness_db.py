"""No silent loss on our side: several processes, a full spool disk, holes nobody recorded.

The outage tests stop the session's embedded server (a crash) and always start it again, so
they need the embedded server, not an external BINPRICE_TEST_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from binprice.db.gaps import list_gaps
from binprice.events import NOISY_INTERVAL_SECONDS
from binprice.exchange.backoff import no_wait
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import EventKind, IngestConfig, IngestEvent, run_ingest
from binprice.ingest.recorder import Recorder
from binprice.testing.exchange import TestExchange
from binprice.timespec import format_timestamp
from tests.fault_helpers import (
    assert_complete,
    complete_from_first,
    ingest_until,
    needs_embedded,
    postgres_down,
    stored_count,
    wait_until,
)
from tests.ingest_helpers import binprice_async as _binprice
from tests.ingest_helpers import exchange_config, spawn_logged_ingest, stored_rows

RATE = 500
OUTAGE_SECONDS = 31.0


def _final(stderr: bytes) -> dict[str, object]:
    lines = [json.loads(x) for x in stderr.decode().splitlines() if x.startswith("{")]
    (final,) = [x for x in lines if x["event"] == "final"]
    return final


def _spool_files(data_dir: Path) -> list[Path]:
    """The spool chunks under `data_dir`. A run renames its directory while others list them
    (its `.new` directory becomes its own), so a listing that meets a vanished one starts over."""
    while True:
        try:
            return list((data_dir / "spool").rglob("*.spool"))
        except FileNotFoundError:
            continue


@pytest.mark.slow
@needs_embedded
async def test_two_ingest_processes_through_a_long_outage_each_killed_or_stopped(
    database_url: str, pg_data_dir: Path, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """Two `binprice ingest` processes (sharing BTCUSDT) spool into one data directory through
    a 31 s PostgreSQL outage; one is SIGKILLed, the other stopped with SIGINT, both while the
    database is down. A third run adopts both spools: every id once, no traceback, no spool
    file left, and its printed count is exactly what the table gained."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    symbols = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
    async with TestExchange(symbols, seed=61, rate=RATE) as ex:
        a = await spawn_logged_ingest(ex, database_url, env, "BTCUSDT", "ETHUSDT")
        b = await spawn_logged_ingest(ex, database_url, env, "BTCUSDT", "BNBUSDT")
        await wait_until(lambda: stored_count(database_url, "BNBUSDT") >= 200, 60)
        await wait_until(lambda: stored_count(database_url, "ETHUSDT") >= 200, 60)
        async with postgres_down(pg_data_dir):
            # The outage lasts at least OUTAGE_SECONDS of market time, and until both processes
            # have read past their memory limit into their own spools (on a loaded machine a
            # reader may lag the market by seconds).
            outage_from = ex.produced_count("BTCUSDT")
            await asyncio.wait_for(
                ex.wait_produced("BTCUSDT", outage_from + int(RATE * OUTAGE_SECONDS)), 60
            )
            await wait_until(lambda: len({p.parent for p in _spool_files(tmp_path)}) == 2, 60)
            a.send_signal(signal.SIGKILL)
            await a.wait()
            b.send_signal(signal.SIGINT)
            _, b_err = await asyncio.wait_for(b.communicate(), 20)
        assert b.returncode == 0, b_err.decode()[-3000:]
        assert b"Traceback" not in b_err
        before = stored_count(database_url)
        c = await spawn_logged_ingest(ex, database_url, env, *symbols)
        await wait_until(lambda: not _spool_files(tmp_path), 60)
        for symbol in symbols:
            await asyncio.wait_for(ex.wait_produced(symbol, ex.produced_count(symbol) + RATE), 30)
        ex.paused.update(symbols)
        produced = {s: ex.produced(s)[-1].trade_id for s in symbols}
        await wait_until(
            lambda: all(
                max((r[1] for r in stored_rows(database_url) if r[0] == s), default=0) >= top
                for s, top in produced.items()
            ),
            60,
        )
        c.send_signal(signal.SIGINT)
        _, c_err = await asyncio.wait_for(c.communicate(), 20)
        assert c.returncode == 0, c_err.decode()[-3000:]
        numbers = assert_complete("two-processes-outage", ex, database_url, symbols)
    assert b"Traceback" not in c_err
    assert a.returncode == -signal.SIGKILL
    c_final = _final(c_err)
    assert stored_count(database_url) - before == c_final["stored"]
    assert any(b'"spool_adopted"' in line for line in c_err.splitlines())
    assert not _spool_files(tmp_path)
    gained = stored_count(database_url) - before
    print(
        f"  b stored {_final(b_err)['stored']}, c stored {c_final['stored']}, table gained "
        f"{gained} after the outage; gaps {numbers['gaps_recorded']}"
    )


@pytest.fixture
def tiny_spool(tmp_path: Path) -> Iterator[Path]:
    """A 96 KiB tmpfs for the spool: a couple of chunks fit, then the disk is full."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the test needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@needs_embedded
async def test_a_full_spool_disk_while_the_database_is_down_drops_nothing_silently(
    database_url: str, pg_data_dir: Path, tmp_path: Path, tiny_spool: Path
) -> None:
    """PostgreSQL down and the spool's filesystem full: binprice says so in one line, keeps
    reading, records the ids it had to drop as gaps, and fetches them once the database is
    back. No traceback, every id once."""
    stats = Recorder()
    stop = asyncio.Event()
    events: list[IngestEvent] = []
    symbols = ("BTCUSDT", "ETHUSDT")
    async with TestExchange(symbols, seed=62, rate=1000) as ex:
        config = IngestConfig(
            symbols=symbols,
            ws_url=ex.ws_url,
            rest_url=ex.rest_url,
            spool_dir=tiny_spool,
            memory_limit=1000,
            max_batch=500,
        )
        policy = StreamPolicy(backoff=no_wait)
        run = asyncio.create_task(
            run_ingest(
                config,
                database_url,
                stop=stop,
                recorder=stats,
                policy=policy,
                on_event=events.append,
            )
        )
        await wait_until(lambda: stats.summary().stored >= 1000, 20)
        async with postgres_down(pg_data_dir):
            await wait_until(lambda: stats.summary().dropped >= 2000, 30)
            assert stats.snapshot().spilled_chunks >= 1  # the spool took what it could
        await wait_until(lambda: not stats.snapshot().db_down, 30)
        for symbol in symbols:
            await asyncio.wait_for(ex.wait_produced(symbol, ex.produced_count(symbol) + 500), 20)
        ex.paused.update(symbols)
        await wait_until(lambda: complete_from_first(ex, database_url, symbols), 60)
        stop.set()
        summary = await asyncio.wait_for(run, 30)
        numbers = assert_complete("full-spool-disk", ex, database_url, symbols, summary)
    dropped = [e for e in events if e.kind is EventKind.DROPPED]
    # One line, rate-limited, not one per chunk: however long the outage ran on a loaded
    # machine, reports are at least the noisy interval apart (on the sink's own clock).
    assert dropped
    apart = [b.time - a.time for a, b in itertools.pairwise(dropped)]
    assert all(gap >= NOISY_INTERVAL_SECONDS for gap in apart), apart
    assert "No space left on device" in dropped[0].message
    assert "\n" not in dropped[0].message
    assert summary.dropped >= 2000
    assert summary.backfilled >= summary.dropped
    assert numbers["gaps_filled"] >= 1
    print(
        f"  dropped {summary.dropped}, spooled {summary.spilled}, backfilled {summary.backfilled}"
    )


async def test_against_exchange_finds_the_tail_and_repair_fills_a_hole_made_by_hand(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """After a stopped run the exchange went on: `gaps --verify --against-exchange` says the
    exchange moved on since the last capture (how many trades, since when) and exits 0, for
    that is no hole; rows deleted by hand from the middle are a hole `--verify` reports (exit
    1); `gaps --repair` records and fetches both, and the check is up to date again."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    symbols = ("BTCUSDT",)
    async with TestExchange(symbols, seed=63, rate=1000) as ex:
        config = exchange_config(ex, tmp_path, symbols)
        # Enough for the hole made by hand below (rows 100..400) to lie inside what is stored.
        await ingest_until(config, database_url, lambda s: s.stored >= 500)
        await asyncio.wait_for(ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 300), 10)
        ex.paused.add("BTCUSDT")
        newest = ex.produced("BTCUSDT")[-1].trade_id
        base = ("--database-url", database_url, "gaps")
        rest = ("--rest-url", ex.rest_url)

        code, out, err = await _binprice(
            env, *base, "--verify", "--against-exchange", *rest, "--json"
        )
        assert code == 0, out + err
        (check,) = json.loads(out)["symbols"]
        assert check["exchange_last_id"] == newest
        assert check["tail"]["last_id"] == newest and not check["tail"]["accounted"]
        assert check["behind"] >= 300 and check["unaccounted"] == 0
        last_ms = stored_rows(database_url)[-1][4]
        code, out, err = await _binprice(env, *base, "--verify", "--against-exchange", *rest)
        assert code == 0, out + err
        out = " ".join(out.split())  # the lines are folded at 80 columns
        assert "BTCUSDT: ok:" in out and "NOT OK" not in out
        assert (
            f"the exchange moved on since the last capture: {check['behind']:,} trades since "
            f"{format_timestamp(datetime.fromtimestamp(last_ms / 1000, UTC))}, up to id {newest}"
        ) in out

        rows = stored_rows(database_url)
        low, high = rows[100][1], rows[400][1]
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM trades WHERE trade_id BETWEEN %s AND %s", (low, high))
        code, out, _ = await _binprice(env, *base, "--verify")
        assert code == 1 and f"unaccounted: BTCUSDT {low}..{high}" in out

        code, out, err = await _binprice(env, *base, "--repair", *rest)
        assert code == 0, out + err
        assert f"BTCUSDT {low}..{high} ({high - low + 1:,} ids): filled" in out
        code, out, err = await _binprice(env, *base, "--verify", "--against-exchange", *rest)
        assert code == 0, out + err
        assert "up to date with the exchange" in " ".join(out.split())
        numbers = assert_complete("repair-hand-made-hole", ex, database_url, symbols)
    with psycopg.connect(database_url) as conn:
        states = {(g.first_id, g.last_id): g.state for g in list_gaps(conn)}
    assert states[(low, high)] == "filled"
    print(f"  repaired {high - low + 1} deleted ids and the tail; {numbers}")


async def test_a_false_hole_is_disproved_by_verify_against_exchange_and_refetched_by_repair(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """A `hole` recorded over ids the exchange has (as an empty page once made one): plain
    `--verify` cannot tell, `--verify --against-exchange` says NOT OK and exits 1, `--repair`
    asks again and stores them; a true hole (ids never served) stays a hole."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    symbols = ("BTCUSDT",)
    async with TestExchange(symbols, seed=64, rate=1000) as ex:
        stop = asyncio.Event()
        run = asyncio.create_task(
            run_ingest(exchange_config(ex, tmp_path, symbols), database_url, stop=stop)
        )
        await asyncio.wait_for(ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 500), 10)
        ex.faults.lose_next = 3  # a true hole
        await asyncio.wait_for(ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 1000), 10)
        ex.paused.add("BTCUSDT")  # no tail: the exchange has nothing past what is stored
        lost = sorted(ex.never_served("BTCUSDT"))
        newest = ex.produced("BTCUSDT")[-1].trade_id
        await wait_until(lambda: stored_rows(database_url)[-1][1] == newest, 20)
        stop.set()
        await asyncio.wait_for(run, 30)
        rows = stored_rows(database_url)
        low, high = rows[100][1], rows[400][1]
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM trades WHERE trade_id BETWEEN %s AND %s", (low, high))
            conn.execute(
                "INSERT INTO gaps (symbol, first_id, last_id, state) "
                "VALUES ('BTCUSDT', %s, %s, 'hole')",
                (low, high),
            )
            states = {(g.first_id, g.last_id): g.state for g in list_gaps(conn)}
        assert states[(lost[0], lost[-1])] == "hole"
        base = ("--database-url", database_url, "gaps")
        rest = ("--rest-url", ex.rest_url)
        code, out, err = await _binprice(env, *base, "--verify")
        assert code == 0, out + err  # without the exchange a recorded hole accounts for them

        code, out, err = await _binprice(env, *base, "--verify", "--against-exchange", *rest)
        assert code == 1, out + err
        out = " ".join(out.split())  # the lines are folded at 80 columns
        assert "BTCUSDT: NOT OK" in out and "up to date with the exchange" in out
        assert f"recorded as a hole, but the exchange has trades from {low}" in out

        code, out, err = await _binprice(env, *base, "--repair", *rest)
        assert code == 0, out + err
        assert f"BTCUSDT {low}..{high} ({high - low + 1:,} ids): filled" in out
        code, out, err = await _binprice(env, *base, "--verify", "--against-exchange", *rest)
        assert code == 0, out + err
        numbers = assert_complete("false-hole-repaired", ex, database_url, symbols)
    with psycopg.connect(database_url) as conn:
        states = {(g.first_id, g.last_id): g.state for g in list_gaps(conn)}
    assert states[(low, high)] == "filled"
    assert states[(lost[0], lost[-1])] == "hole"
    print(f"  false hole {low}..{high} refetched; {numbers}")


@pytest.mark.parametrize("mode", ["--verify", "--repair"])
async def test_gaps_against_an_exchange_that_cannot_be_reached_is_one_error_line(
    database_url: str, clean_env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    """Several symbols failing alike are one line naming the exchange, never a traceback of
    an exception group (each symbol is asked in a task of its own)."""
    from tests.trades_data import SMALL, load

    load(database_url, SMALL)
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path / "data")}
    args = ("--database-url", database_url, "gaps", mode, "--rest-url", "http://127.0.0.1:9")
    code, out, err = await _binprice(
        env, *args, *(["--against-exchange"] if mode == "--verify" else [])
    )
    assert (code, out) == (1, ""), err
    assert err.startswith("error: cannot reach the exchange at http://127.0.0.1:9: ")
    assert err.count("\n") == 1 and "Traceback" not in err
