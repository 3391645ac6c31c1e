"""`binprice ingest` as users run it: a real process, real signals, one-line errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator

import psycopg
import pytest

from binprice.exchange.stream import CLOSE_TIMEOUT_SECONDS
from binprice.ingest.pipeline import (
    READERS_DEADLINE_SECONDS,
    SETTLE_DEADLINE_SECONDS,
    SHUTDOWN_DEADLINE_SECONDS,
    STOP_BACKFILL_DEADLINE_SECONDS,
    TAIL_DEADLINE_SECONDS,
)
from binprice.ingest.sink import SHUTDOWN_GRACE_SECONDS
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from tests.fault_helpers import HANG_GUARD_SECONDS, stored_count, wait_until
from tests.ingest_helpers import as_rows, spawn_ingest, stored_rows


async def _ingest(
    ex: TestExchange, url: str, *args: str, env: dict[str, str]
) -> asyncio.subprocess.Process:
    return await spawn_ingest(
        url, "--log-format", "json", *args, ws_url=ex.ws_url, rest_url=ex.rest_url, env=env
    )


@contextlib.asynccontextmanager
async def _commits_hang(url: str) -> AsyncIterator[None]:
    """Hold a lock that blocks writes to trades (reads still work): commits hang, not fail."""
    blocker = await psycopg.AsyncConnection.connect(url)
    try:
        await blocker.execute("LOCK TABLE trades IN EXCLUSIVE MODE")
        yield
    finally:
        await blocker.rollback()
        await blocker.close()


#: The CLI's promise: a stop (Ctrl+C, SIGTERM) ends the run within this, whatever the database.
#: The deadlines on the stop path keep it (see the test below); the process tests wait for a
#: stop with `HANG_GUARD_SECONDS`, a guard against a hang, and check it took the clean path.
STOP_BUDGET_SECONDS = 5


def test_the_deadlines_on_the_stop_path_add_up_to_the_stop_budget() -> None:
    """A stop first lets the stream readers close, fetches the gaps already seen, then asks
    for each symbol's tail while the writers drain, then records and settles the gaps: each
    step bounded by its deadline, and their sum within the 5 s promised (a writer gives up on
    a down database within the drain; a close frame is waited for no longer than the readers
    are)."""
    tail_or_drain = max(TAIL_DEADLINE_SECONDS, SHUTDOWN_DEADLINE_SECONDS)
    stop_path = (
        READERS_DEADLINE_SECONDS
        + STOP_BACKFILL_DEADLINE_SECONDS
        + tail_or_drain
        + SETTLE_DEADLINE_SECONDS
    )
    assert stop_path <= STOP_BUDGET_SECONDS
    assert SHUTDOWN_GRACE_SECONDS < SHUTDOWN_DEADLINE_SECONDS
    assert CLOSE_TIMEOUT_SECONDS <= READERS_DEADLINE_SECONDS


def _assert_stopped_cleanly(proc: asyncio.subprocess.Process, stderr: bytes) -> None:
    """Exit 0 through the stop path: the `stopped` event and the final line, no error line."""
    text = stderr.decode()
    assert proc.returncode == 0, text
    events = [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    assert "stopping" in events and "stopped" in events and events[-1] == "final", events
    assert "fatal" not in events
    assert not [line for line in text.splitlines() if line.startswith("error:")], text


def _fatal(stderr: bytes) -> list[str]:
    """The JSON log's `fatal` messages; every line of it must be JSON."""
    records = [json.loads(line) for line in stderr.decode().splitlines()]
    return [r["message"] for r in records if r["event"] == "fatal"]


async def _until_stored(url: str, count: int) -> None:
    """Wait (at most 15 s) until the table holds at least `count` trades."""
    await wait_until(lambda: stored_count(url) >= count, 15)


async def _until_line(proc: asyncio.subprocess.Process, event: str, lines: list[bytes]) -> None:
    """Read the process's JSON log lines (kept in `lines`) until one of `event` arrives."""
    assert proc.stderr is not None
    async with asyncio.timeout(15):
        while True:
            line = await proc.stderr.readline()
            assert line, "the process ended first"
            lines.append(line)
            if f'"event": "{event}"'.encode() in line:
                return


def _final(stderr: bytes) -> dict[str, object]:
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    (final,) = [line for line in lines if line["event"] == "final"]
    return final


async def test_max_trades_run_ends_by_itself_with_every_trade_stored(
    database_url: str, clean_env: dict[str, str], tmp_path: object
) -> None:
    """--max-trades N: the process exits 0 by itself and the table holds exactly those N."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(["BTCUSDT", "ETHUSDT"], seed=2, rate=None, max_trades=2500) as ex:
        proc = await _ingest(
            ex, database_url, "BTCUSDT", "ethusdt", "--max-trades", "5000", env=env
        )
        _, err = await asyncio.wait_for(proc.communicate(), 90)
        produced = ex.produced("BTCUSDT") + ex.produced("ETHUSDT")
    assert proc.returncode == 0, err.decode()
    assert stored_rows(database_url) == as_rows(produced)
    assert _final(err)["stored"] == 5000
    events = err.decode()
    assert "newest schema" in events  # it checked the schema (migrating if needed) and said so


async def test_sigint_commits_everything_received_and_exits_zero_through_the_stop_path(
    database_url: str, clean_env: dict[str, str], tmp_path: object
) -> None:
    """Ctrl+C mid-stream: exit 0 through the stop path (whose deadlines keep the 5 s budget),
    and every trade received is stored."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(["BTCUSDT", "ETHUSDT"], seed=4, rate=2000) as ex:
        proc = await _ingest(ex, database_url, env=env)
        await _until_stored(database_url, 1000)
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD_SECONDS)
        produced = {
            (t.symbol, t.trade_id): t for s in ("BTCUSDT", "ETHUSDT") for t in ex.produced(s)
        }
    _assert_stopped_cleanly(proc, err)
    final = _final(err)
    rows = stored_rows(database_url)
    assert final["received"] == final["stored"] == len(rows) > 1000
    assert rows == as_rows([produced[(r[0], r[1])] for r in rows])
    for symbol in ("BTCUSDT", "ETHUSDT"):
        ids = [r[1] for r in rows if r[0] == symbol]
        assert ids == list(range(ids[0], ids[0] + len(ids)))


@pytest.mark.parametrize(
    ("symbols", "expect", "code"),
    [
        (["BTCUSDT", "NOPEUSDT"], "unknown symbol on the exchange: NOPEUSDT", 2),
        (["XRPUSDT"], "not trading on the exchange: XRPUSDT (BREAK)", 2),
    ],
    ids=["unknown", "not-trading"],
)
async def test_bad_symbols_are_a_one_line_error(
    database_url: str, clean_env: dict[str, str], symbols: list[str], expect: str, code: int
) -> None:
    """Symbols are checked against exchangeInfo before connecting."""
    async with TestExchange(["BTCUSDT", "XRPUSDT"], statuses={"XRPUSDT": "BREAK"}) as ex:
        proc = await _ingest(ex, database_url, *symbols, env=clean_env)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    (message,) = _fatal(err)
    assert proc.returncode == code
    assert message.startswith(expect)
    assert ex.connections_opened == 0


async def test_unreachable_exchange_is_a_one_line_error(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """Nothing listens at the REST URL: one line naming it and the way to try binprice
    offline, exit 1, no traceback."""
    proc = await spawn_ingest(
        database_url, "-q", ws_url="ws://127.0.0.1:9", rest_url="http://127.0.0.1:9", env=clean_env
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1
    assert lines[-1].startswith("error: cannot reach the exchange at http://127.0.0.1:9")
    assert lines[-1].endswith("`binprice demo` tries binprice offline, on a local test exchange")
    assert "Traceback" not in err.decode()


async def test_with_json_logs_a_fatal_error_is_a_json_line_too(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """--log-format json: the error that ends the run is the last JSON line (event `fatal`,
    severity `error`), every line of stderr is JSON, and the exit status is the text format's."""
    proc = await spawn_ingest(
        database_url,
        *("--log-format", "json"),
        ws_url="ws://127.0.0.1:9",
        rest_url="http://127.0.0.1:9",
        env=clean_env,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    records = [json.loads(line) for line in err.decode().splitlines()]
    assert proc.returncode == 1
    last = records[-1]
    assert (last["event"], last["severity"]) == ("fatal", "error")
    assert last["message"].startswith("cannot reach the exchange at http://127.0.0.1:9")
    assert last["time"].endswith("Z")


async def test_http_451_at_the_handshake_is_fatal_and_suggests_binance_us(
    database_url: str, clean_env: dict[str, str], tmp_path: object
) -> None:
    """A restricted location is permanent: no retry loop, a hint at the Binance.US preset."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(["BTCUSDT"], faults=Faults(geo_block_ws=True)) as ex:
        proc = await _ingest(ex, database_url, "BTCUSDT", env=env)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    (message,) = _fatal(err)
    assert proc.returncode == 1
    assert "451" in message and "binance-us" in message


async def test_stop_with_a_hung_database_exits_in_time_and_the_next_run_commits_the_spool(
    database_url: str, clean_env: dict[str, str], tmp_path: object
) -> None:
    """The table is locked (commits hang, nothing fails): Ctrl+C still exits 0 through the
    stop path (its drain deadline, not the database, ends it), the received trades wait in the
    spool, and the next run commits them, each once."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(["BTCUSDT"], seed=6, rate=1000) as ex:
        proc = await _ingest(ex, database_url, "BTCUSDT", env=env)
        await _until_stored(database_url, 300)
        async with _commits_hang(database_url):
            # Trades pile up behind the lock while the exchange makes a second's worth more.
            await ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 1000)
            proc.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD_SECONDS)
        first = _final(err)
        _assert_stopped_cleanly(proc, err)
        assert first["received"] > first["stored"]  # some were left for the spool
        again = await _ingest(ex, database_url, "BTCUSDT", env=env)
        await _until_stored(database_url, int(first["received"]))  # type: ignore[call-overload]
        again.send_signal(signal.SIGINT)
        _, err2 = await asyncio.wait_for(again.communicate(), HANG_GUARD_SECONDS)
        _assert_stopped_cleanly(again, err2)
        produced = {t.trade_id: t for t in ex.produced("BTCUSDT")}
    rows = stored_rows(database_url)
    ids = [r[1] for r in rows]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # contiguous: nothing lost
    assert rows == as_rows([produced[i] for i in ids])
    assert len(ids) >= int(first["received"])  # type: ignore[call-overload]


async def test_a_second_ctrl_c_aborts_at_once_without_a_traceback(
    database_url: str, clean_env: dict[str, str], tmp_path: object
) -> None:
    """With commits hanging, a second SIGINT ends the run at once: exit 130, one line."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(["BTCUSDT"], seed=8, rate=1000) as ex:
        proc = await _ingest(ex, database_url, "BTCUSDT", env=env)
        await _until_stored(database_url, 300)
        async with _commits_hang(database_url):
            await ex.wait_produced("BTCUSDT", ex.produced_count("BTCUSDT") + 500)
            proc.send_signal(signal.SIGINT)
            seen: list[bytes] = []
            await _until_line(proc, "stopping", seen)  # the first Ctrl+C was taken
            proc.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD_SECONDS)
    text = (b"".join(seen) + err).decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    assert _fatal(b"".join(seen) + err) == [
        "aborted; trades received but not committed are in the spool and will be "
        "committed by the next `binprice ingest`"
    ]


async def test_verbose_prints_every_stored_trade(
    database_url: str, clean_env: dict[str, str], tmp_path: object
) -> None:
    """-v: one line per stored trade (the original design's log), with exact price and qty."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(["BTCUSDT"], seed=12, rate=None, max_trades=25) as ex:
        proc = await spawn_ingest(
            database_url,
            *("BTCUSDT", "--log-format", "plain", "-v", "--max-trades", "25"),
            ws_url=ex.ws_url,
            rest_url=ex.rest_url,
            env=env,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        produced = ex.produced("BTCUSDT")
    assert proc.returncode == 0, err.decode()
    lines = [line for line in err.decode().splitlines() if " BTCUSDT #" in line]
    assert len(lines) == 25
    first = produced[0]
    assert f"BTCUSDT #{first.trade_id} " in lines[0]
    assert f"{first.quantity:f} @ {first.price:f}" in lines[0]


async def test_metrics_port_from_the_environment_serves_a_running_process(
    database_url: str, clean_env: dict[str, str], tmp_path: object
) -> None:
    """BINPRICE_METRICS_PORT: the process says where it serves, /healthz answers 200 while
    it streams, and SIGTERM still ends it cleanly with everything stored."""
    import aiohttp

    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path), "BINPRICE_METRICS_PORT": "0"}
    async with TestExchange(["BTCUSDT"], seed=5, rate=200) as ex:
        proc = await _ingest(ex, database_url, "BTCUSDT", env=env)
        lines: list[bytes] = []
        await _until_line(proc, "metrics", lines)
        message = json.loads(lines[-1])["message"]
        base = message.split("health at ")[1].removesuffix("/healthz")
        assert base.startswith("http://127.0.0.1:")
        await _until_stored(database_url, 100)
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(15):
                while True:
                    async with http.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            assert (await resp.json())["phase"] == "streaming"
                            break
                    await asyncio.sleep(0.05)
            async with http.get(base + "/metrics") as resp:
                text = await resp.text()
        assert 'binprice_trades_stored_total{symbol="BTCUSDT"}' in text
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD_SECONDS)
    _assert_stopped_cleanly(proc, err)
    final = _final(err)
    ids = [r[1] for r in stored_rows(database_url)]
    assert final["received"] == final["stored"] == len(ids) >= 100
    assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_json_log_format_turns_library_warnings_and_notices_into_json_lines() -> None:
    """psycopg's warning when a COPY is cut off by a lost connection, and binprice's own
    notices, are JSON lines of the run with --log-format json, never plain text."""
    import io
    import logging

    from binprice.cli.views.ingest import Monitor
    from binprice.cli.views.ingest_log import log_records_to

    out = io.StringIO()
    with log_records_to(Monitor("json", quiet=False, verbose=False, stream=out)):
        logging.getLogger("psycopg").warning(
            "error ignored terminating %r: %s",
            "<psycopg.AsyncCopy [BAD]>",
            "consuming input failed",
        )
        logging.getLogger("binprice.db._connect").info("started the embedded server")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["library_warning", "notice"]
    assert "error ignored terminating" in lines[0]["message"]
    assert lines[0]["message"].startswith("psycopg: ")
