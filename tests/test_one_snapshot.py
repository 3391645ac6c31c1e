"""One answer, one snapshot (#18 item 4): a read that combines rows and blocks runs in one
REPEATABLE READ READ ONLY transaction, so a day's compress committing between its statements
neither hides that day nor shows it twice. The reader is paused before each of its statements
in turn (a connection that waits on an event before a chosen statement), a fresh day of the
live month is compressed meanwhile, and the answer must be the one read before any compress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.abc import Params, Query

from binprice.db.compress_days import compress_day
from binprice.db.queries import price_at, price_range
from tests.fault_helpers import HANG_GUARD_SECONDS
from tests.test_compress import APRIL, _filled

DAY = timedelta(days=1)
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


class PausingConnection(psycopg.Connection[Any]):
    """Waits on `go` before its `pause_before`-th statement, after setting `paused`."""

    pause_before = 0
    statements = 0

    def arm(self, pause_before: int) -> None:
        self.pause_before, self.statements = pause_before, 0
        self.paused, self.go = threading.Event(), threading.Event()

    def execute(self, query: Query, params: Params | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        self.statements += 1
        if self.statements == self.pause_before:
            self.paused.set()
            assert self.go.wait(HANG_GUARD_SECONDS), "never released"
        return super().execute(query, params, **kwargs)


def _range(conn: psycopg.Connection[Any], day: int) -> Any:
    start = APRIL + day * DAY + timedelta(hours=10, seconds=-20)
    return price_range(conn, start, start + timedelta(seconds=50), SYMBOLS)


def _at(conn: psycopg.Connection[Any], day: int) -> Any:
    return price_at(conn, APRIL + day * DAY + timedelta(hours=10, seconds=1), SYMBOLS)


READS: dict[str, Callable[[psycopg.Connection[Any], int], Any]] = {"range": _range, "at": _at}


@pytest.mark.parametrize("blocks_before", [False, True], ids=["first-day", "more-days"])
@pytest.mark.parametrize("pause_before", [1, 2, 3, 4])
@pytest.mark.parametrize("name", READS)
def test_a_day_compressed_between_a_readers_statements_answers_once(
    database_url: str, name: str, pause_before: int, blocks_before: bool
) -> None:
    """Day 1 of April is compressed while the reader waits before its `pause_before`-th
    statement (after its last one if it has fewer); `more-days`: day 2 was compressed
    before, so the month already has blocks."""
    read = READS[name]
    with _filled(database_url) as writer:
        if blocks_before:
            compress_day(writer, APRIL + DAY)
        expected = read(writer, 0)
        assert expected
        with PausingConnection.connect(database_url, autocommit=True) as reader:
            reader.arm(pause_before)
            got: list[Any] = []

            def run() -> None:
                try:
                    got.append(read(reader, 0))
                finally:
                    reader.paused.set()  # also when it ends before that statement

            thread = threading.Thread(target=run)
            thread.start()
            assert reader.paused.wait(HANG_GUARD_SECONDS)
            compress_day(writer, APRIL)
            reader.go.set()
            thread.join(HANG_GUARD_SECONDS)
        assert got == [expected]


@pytest.mark.parametrize("autocommit", [True, False])
def test_snapshot_is_one_repeatable_read_read_only_transaction(
    database_url: str, autocommit: bool
) -> None:
    """Inside `snapshot` the transaction is REPEATABLE READ and READ ONLY; afterwards the
    connection is idle with its own settings back; inside a caller's transaction it adds none."""
    from binprice.db.catalog import snapshot

    setting = (
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"
    )
    with psycopg.connect(database_url, autocommit=autocommit) as conn:
        with snapshot(conn):
            assert conn.execute(setting).fetchone() == ("repeatable read", "on")
        assert (conn.isolation_level, conn.read_only) == (None, None)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with conn.transaction(), snapshot(conn):
            assert conn.execute(setting).fetchone() == ("read committed", "off")
