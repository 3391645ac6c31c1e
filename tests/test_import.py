"""`import_history` against the real test archive server and a real PostgreSQL.

Every stored field is compared with the generator's record; faults are the archive server's
knobs. Helpers here are shared by the other test_import* modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from binprice.db.copy import COPY_TRADES, CopyEncoder
from binprice.db.gaps import verify_gaps
from binprice.exchange.protocol import WireTrade
from binprice.history import (
    EventKind,
    FileStatus,
    ImportEvent,
    ImportOptions,
    ImportSummary,
    import_history,
)
from binprice.history._csv import MAX_LINE_BYTES
from binprice.testing.archive import ArchiveFaults, ArchiveServer
from binprice.testing.archive_files import ArchiveMarket, write_csv_zip

SYMBOL = "BTCUSDT"
#: One valid trade of 2024-03-01.
TRADE_LINE = b"1,1.0,1.0,1.0,1709251200000,True,True\n"
#: Far after every test archive's days, so nothing counts as "not published yet".
LATER = date(2026, 1, 1)
TextRow = tuple[str, int, str, str, int, bool]


def stored_text(url: str, symbol: str | None = None, table: str = "trades_all") -> list[TextRow]:
    """Stored trades as text (price and quantity exactly as PostgreSQL prints them): rows
    and compressed blocks (`trades_all`), or one of them (`trades`, `trade_blocks`)."""
    if table == "trade_blocks":
        table = "trades_all WHERE (symbol, trade_id) NOT IN (SELECT symbol, trade_id FROM trades)"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT * FROM (SELECT symbol, trade_id, price::text, quantity::text, "
            "floor(extract(epoch FROM timestamp) * 1000)::bigint, is_buyer_maker "
            f"FROM {table}) AS t "
            "WHERE %(s)s::text IS NULL OR t.symbol = %(s)s ORDER BY 1, 2",
            {"s": symbol},
        ).fetchall()
    return [(s, i, p, q, int(t), m) for s, i, p, q, t, m in rows]


def expected_text(trades: Iterable[WireTrade]) -> list[TextRow]:
    return sorted(
        (t.symbol, t.trade_id, f"{t.price:f}", f"{t.quantity:f}", t.time_ms, t.is_buyer_maker)
        for t in trades
    )


def market_trades(market: ArchiveMarket, symbol: str = SYMBOL) -> list[WireTrade]:
    record = market.records[symbol]
    return [record.trade(i) for i in range(len(record))]


def imports(url: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT name, state, rows, inserted, first_id, last_id, sha256 FROM imports"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def gaps(url: str) -> list[tuple[int, int, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT first_id, last_id, state FROM gaps ORDER BY 1").fetchall()
    return [(int(a), int(b), str(s)) for a, b, s in rows]


def verified(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return verify_gaps(conn).ok


def options(archive: ArchiveServer, start: date, end: date, tmp: Path, **kw: Any) -> ImportOptions:
    return ImportOptions(
        (SYMBOL,),
        start=start,
        end=end,
        archive_url=archive.url,
        rest_url=archive.url,
        spool_dir=tmp / "downloads",
        today=kw.pop("today", LATER),
        **kw,
    )


async def run(opts: ImportOptions, url: str, **kw: Any) -> tuple[ImportSummary, list[ImportEvent]]:
    events: list[ImportEvent] = []
    summary = await import_history(opts, url, on_event=events.append, **kw)
    return summary, events


def statuses(summary: ImportSummary) -> dict[str, FileStatus]:
    return {f.name: f.status for s in summary.symbols for f in s.files}


async def test_archive_to_table_exact_for_every_field_across_the_microsecond_switch(
    database_url: str, tmp_path: Path
) -> None:
    """Dec 2024 (ms) and Jan 2025 (µs) monthly files and a daily one land field by field."""
    market = ArchiveMarket.generate(
        [SYMBOL, "ETHUSDT"], date(2024, 12, 1), date(2025, 2, 2), trades_per_day=9
    )
    async with ArchiveServer(market) as archive:
        opts = ImportOptions(
            (SYMBOL, "ETHUSDT"),
            start=date(2024, 12, 1),
            end=date(2025, 2, 2),
            archive_url=archive.url,
            spool_dir=tmp_path / "downloads",
            today=LATER,
        )
        summary, events = await run(opts, database_url)
    assert summary.ok and not summary.stopped
    for symbol in (SYMBOL, "ETHUSDT"):
        expected = expected_text(market_trades(market, symbol))
        assert stored_text(database_url, symbol) == expected
        assert summary.last_trade_ids[symbol] == expected[-1][1]
    recorded = imports(database_url)
    assert set(recorded) == {
        f"{s}-trades-{p}.zip"
        for s in (SYMBOL, "ETHUSDT")
        for p in ("2024-12", "2025-01", "2025-02-01")
    }
    assert all(r[0] == "done" and r[1] == r[2] for r in recorded.values())
    december = recorded[f"{SYMBOL}-trades-2024-12.zip"]
    assert (december[1], december[3]) == (31 * 9, market.generators[SYMBOL].first_id)
    assert gaps(database_url) == [] and verified(database_url)
    assert next(e.kind for e in events if e.symbol == SYMBOL) is EventKind.PLANNED
    assert sum(e.kind is EventKind.LOADED for e in events) == 6
    with psycopg.connect(database_url) as conn:  # the rollup triggers saw every row
        row = conn.execute(
            "SELECT sum(trades), min(first_id) FROM trade_minutes WHERE symbol = %s", (SYMBOL,)
        ).fetchone()
    assert row == (len(market_trades(market)), market.generators[SYMBOL].first_id)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("wrong_checksum", "checksum mismatch: the CHECKSUM file says"),
        ("truncated", "not a readable zip (truncated or corrupt)"),
        ("corrupt", "corrupt zip"),
    ],
    ids=["checksum-mismatch", "truncated-zip", "corrupt-zip"],
)
async def test_a_damaged_file_is_refused_with_nothing_of_it_committed(
    database_url: str, tmp_path: Path, fault: str, reason: str
) -> None:
    """The damaged day is refused, named, and absent; the days around it are stored."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 3, 1), date(2024, 3, 4), trades_per_day=400
    )
    bad = f"{SYMBOL}-trades-2024-03-02.zip"
    faults = ArchiveFaults()
    getattr(faults, fault).add(bad)
    async with ArchiveServer(market, faults) as archive:
        summary, events = await run(
            options(archive, date(2024, 3, 1), date(2024, 3, 4), tmp_path), database_url
        )
    assert not summary.ok
    [failed] = summary.failed
    assert (failed.name, failed.status) == (bad, FileStatus.REFUSED) and reason in failed.reason
    refusal = next(e for e in events if e.kind is EventKind.REFUSED)
    assert refusal.message.startswith(f"{bad}: refused: ") and "\n" not in refusal.message
    trades = market_trades(market)
    assert stored_text(database_url) == expected_text(trades[:400] + trades[800:])
    assert bad not in imports(database_url)
    first, last = trades[400].trade_id, trades[799].trade_id
    assert gaps(database_url) == [(first, last, "open")]  # to be fetched: the ids are real
    assert verified(database_url)
    assert list((tmp_path / "downloads").iterdir()) == []  # nothing left spooled


async def test_a_malformed_line_refuses_the_file_naming_the_line(
    database_url: str, tmp_path: Path
) -> None:
    """Line 7 of the file is garbage: refused with its number and what is wrong."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 3, 1), date(2024, 3, 3), trades_per_day=50)
    bad = f"{SYMBOL}-trades-2024-03-02.zip"
    faults = ArchiveFaults(malformed={bad: {6: "6329162667,73109.3,0.1,7.3,1709337600000,True\n"}})
    async with ArchiveServer(market, faults) as archive:
        summary, _ = await run(
            options(archive, date(2024, 3, 1), date(2024, 3, 3), tmp_path), database_url
        )
    [failed] = summary.failed
    assert failed.reason == "malformed line 7: 6 fields instead of 7: " + repr(
        "6329162667,73109.3,0.1,7.3,1709337600000,True"
    )
    assert len(stored_text(database_url)) == 50


@pytest.mark.parametrize(
    ("csv", "line"),
    [(b"1" * (64 << 10), 1), (TRADE_LINE + b"\n" * (8 << 20) + b"2" * (64 << 10), 2 + (8 << 20))],
    ids=["one-line", "after-blank-lines"],
)
async def test_a_line_with_no_end_refuses_the_file_in_one_line_and_stores_nothing(
    database_url: str, tmp_path: Path, csv: bytes, line: int
) -> None:
    """A CSV line that never ends (a hand-made or hostile zip) is refused once it passes the
    line cap, naming the file, the line and why; nothing of the file is stored."""
    path = write_csv_zip(tmp_path / f"{SYMBOL}-trades-2024-03-01.zip", [csv])
    summary, events = await run(
        ImportOptions(files=(path,), spool_dir=tmp_path / "downloads", today=LATER), database_url
    )
    [failed] = summary.failed
    assert failed.reason == (
        f"malformed line {line:,}: longer than {MAX_LINE_BYTES:,} bytes with no end (a trade "
        "line is under 200 bytes): not a Binance trades CSV; check where this zip came from"
    )
    refusal = next(e for e in events if e.kind is EventKind.REFUSED)
    assert refusal.message == f"{path.name}: refused: {failed.reason}"
    assert stored_text(database_url) == [] and imports(database_url) == {}


async def test_a_re_run_skips_verified_files_without_downloading_them(
    database_url: str, tmp_path: Path
) -> None:
    """The second run reads only CHECKSUM files and stores nothing new."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 2, 28), date(2024, 4, 1), trades_per_day=5)
    async with ArchiveServer(market) as archive:
        opts = options(archive, date(2024, 2, 28), date(2024, 4, 1), tmp_path)
        await run(opts, database_url)
        archive.requests.clear()
        summary, events = await run(opts, database_url)
        requested = list(archive.requests)
    assert set(statuses(summary).values()) == {FileStatus.SKIPPED}
    assert requested and all(p.endswith(".CHECKSUM") for p in requested)
    assert sum(e.kind is EventKind.SKIPPED for e in events) == 3
    assert stored_text(database_url) == expected_text(market_trades(market))


async def test_a_republished_file_is_imported_again_and_reported(
    database_url: str, tmp_path: Path
) -> None:
    """First published with a hole (an open gap), republished whole: imported, gap filled."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 5, 1), date(2024, 5, 3), trades_per_day=30)
    trades = market_trades(market)
    name = f"{SYMBOL}-trades-2024-05-01.zip"
    hole = {t.trade_id for t in trades[10:13]}
    async with ArchiveServer(market, ArchiveFaults(dropped={name: hole})) as archive:
        opts = options(archive, date(2024, 5, 1), date(2024, 5, 3), tmp_path)
        await run(opts, database_url)
        assert gaps(database_url) == [(min(hole), max(hole), "open")]
        first_sha = imports(database_url)[name][5]
        archive.republish(name)
        summary, events = await run(opts, database_url)
    assert statuses(summary)[name] is FileStatus.LOADED
    assert any(e.kind is EventKind.REPUBLISHED and e.file == name for e in events)
    state, rows, inserted, *_, sha = imports(database_url)[name]
    assert (state, rows, inserted) == ("done", 30, 3) and sha != first_sha
    assert stored_text(database_url) == expected_text(trades)
    assert gaps(database_url) == [(min(hole), max(hole), "filled")]


async def test_a_hole_in_the_archive_is_fetched_from_rest_with_rest_tail(
    database_url: str, tmp_path: Path
) -> None:
    """Ids the archive file lacks but REST has are stored; the gap is settled filled."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 5, 1), date(2024, 5, 2), trades_per_day=40)
    trades = market_trades(market)
    name = f"{SYMBOL}-trades-2024-05-01.zip"
    hole = {t.trade_id for t in trades[5:9]}
    async with ArchiveServer(market, ArchiveFaults(dropped={name: hole}), rest=True) as archive:
        opts = options(archive, date(2024, 5, 1), date(2024, 5, 2), tmp_path, rest_tail=True)
        summary, _ = await run(opts, database_url)
    assert summary.ok
    assert stored_text(database_url) == expected_text(trades)
    assert gaps(database_url) == [(min(hole), max(hole), "filled")] and verified(database_url)


async def test_days_not_published_yet_are_noted_and_filled_from_rest_when_asked(
    database_url: str, tmp_path: Path
) -> None:
    """The archive lags: its last two days 404. Not an error; --rest-tail fetches them."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 6, 1), date(2024, 6, 6), trades_per_day=25)
    faults = ArchiveFaults(unpublished_from=date(2024, 6, 4))
    today = date(2024, 6, 6)
    async with ArchiveServer(market, faults, rest=True) as archive:
        plain, events = await run(
            options(archive, date(2024, 6, 1), today, tmp_path, today=today), database_url
        )
        assert plain.ok
        assert [s for s in statuses(plain).values()].count(FileStatus.NOT_PUBLISHED) == 2
        note = next(e for e in events if e.kind is EventKind.NOT_PUBLISHED)
        assert note.message == (
            f"{SYMBOL} 2024-06-04 to 2024-06-05: not published yet "
            f"({SYMBOL}-trades-2024-06-04.zip .. {SYMBOL}-trades-2024-06-05.zip)"
        )
        trades = market_trades(market)
        assert stored_text(database_url) == expected_text(trades[:75])
        tail, _ = await run(
            options(archive, date(2024, 6, 1), today, tmp_path, today=today, rest_tail=True),
            database_url,
        )
    assert tail.ok and tail.symbols[0].rest_trades == 50
    assert stored_text(database_url) == expected_text(trades)
    assert tail.last_trade_ids == {SYMBOL: trades[-1].trade_id}
    assert gaps(database_url) == [] and verified(database_url)


async def test_a_missing_day_is_a_failure_and_an_open_gap_until_it_appears(
    database_url: str, tmp_path: Path
) -> None:
    """A day between published days 404s: missing (exit 1), its ids an open gap; once it is
    published, a re-run loads it and the gap is filled."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 7, 1), date(2024, 7, 4), trades_per_day=10)
    name = f"{SYMBOL}-trades-2024-07-02.zip"
    async with ArchiveServer(market, ArchiveFaults(missing={name})) as archive:
        opts = options(archive, date(2024, 7, 1), date(2024, 7, 4), tmp_path)
        first, events = await run(opts, database_url)
        assert [f.name for f in first.failed] == [name]
        assert any(e.kind is EventKind.MISSING for e in events)
        trades = market_trades(market)
        assert gaps(database_url) == [(trades[10].trade_id, trades[19].trade_id, "open")]
        archive.republish(name)
        second, _ = await run(opts, database_url)
    assert second.ok and statuses(second)[name] is FileStatus.LOADED
    assert gaps(database_url) == [(trades[10].trade_id, trades[19].trade_id, "filled")]


async def test_a_missing_monthly_file_is_replaced_by_its_daily_files(
    database_url: str, tmp_path: Path
) -> None:
    """Monthly files appear days after the month ends; the daily ones stand in."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 2, 1), date(2024, 3, 1), trades_per_day=3)
    monthly = f"{SYMBOL}-trades-2024-02.zip"
    async with ArchiveServer(market, ArchiveFaults(missing={monthly})) as archive:
        summary, events = await run(
            options(archive, date(2024, 2, 1), date(2024, 3, 1), tmp_path), database_url
        )
        assert any(e.kind is EventKind.DAILY_INSTEAD for e in events)
        assert len(statuses(summary)) == 29 and summary.ok
        assert stored_text(database_url) == expected_text(market_trades(market))
        archive.republish(monthly)  # now published: the dailies already cover it
        again, _ = await run(
            options(archive, date(2024, 2, 1), date(2024, 3, 1), tmp_path), database_url
        )
    [month] = again.symbols[0].files
    assert month.status is FileStatus.SKIPPED and month.reason.startswith("already imported as")


async def test_a_stop_mid_file_commits_a_partial_record_and_the_next_run_resumes(
    database_url: str, tmp_path: Path
) -> None:
    """Stopped after the first chunk: `partial` with its last id; resumed, then exact."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 8, 1), date(2024, 8, 2), trades_per_day=3000
    )
    name = f"{SYMBOL}-trades-2024-08-01.zip"
    async with ArchiveServer(market) as archive:
        opts = options(
            archive,
            date(2024, 8, 1),
            date(2024, 8, 2),
            tmp_path,
            commit_rows=500,
            block_bytes=16 * 1024,
        )
        stop = asyncio.Event()
        first = await import_history(
            opts, database_url, stop=stop, on_progress=lambda p: stop.set()
        )
        state, rows, _inserted, first_id, last_id, _sha = imports(database_url)[name]
        assert first.stopped and statuses(first)[name] is FileStatus.INTERRUPTED
        assert state == "partial" and 0 < rows < 3000 and last_id - first_id + 1 == rows
        assert len(stored_text(database_url)) == rows
        assert list((tmp_path / "downloads").iterdir()) == [tmp_path / "downloads" / name]
        archive.requests.clear()
        second, events = await run(opts, database_url)
        assert not any(p.endswith(".zip") for p in archive.requests)  # the spooled zip reused
    assert any(e.kind is EventKind.RESUMED and str(last_id) in e.message for e in events)
    assert second.ok and imports(database_url)[name][:2] == ("done", 3000)
    assert stored_text(database_url) == expected_text(market_trades(market))


async def test_a_stop_during_a_stalled_download_leaves_it_and_the_rest_not_loaded(
    database_url: str, tmp_path: Path
) -> None:
    """Day 3's download stalls: a stop abandons it at once instead of waiting out the read
    timeouts; days 3 to 5 are `not_loaded` (not refused: the stop is no failure), nothing of
    them is recorded or spooled, and the summary has the last id really stored."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 3, 1), date(2024, 3, 6), trades_per_day=5)
    names = [f"{SYMBOL}-trades-2024-03-0{d}.zip" for d in range(1, 6)]
    stop = asyncio.Event()
    events: list[ImportEvent] = []
    first_two = asyncio.Event()

    def note(event: ImportEvent) -> None:
        events.append(event)
        loaded = {e.file for e in events if e.kind is EventKind.LOADED}
        if loaded >= set(names[:2]):
            first_two.set()

    async with ArchiveServer(market, ArchiveFaults(stalled={names[2]})) as archive:

        async def stop_when_stalled() -> None:
            await archive.stalled.wait()
            await first_two.wait()  # their LOADED events come after their last commit
            stop.set()

        # One loader: day 4 waits for day 3 (with two, it may load beside the stalled one).
        opts = options(archive, date(2024, 3, 1), date(2024, 3, 6), tmp_path, loaders=1)
        async with asyncio.timeout(30), asyncio.TaskGroup() as group:
            group.create_task(stop_when_stalled())
            summary = await import_history(opts, database_url, on_event=note, stop=stop)
    assert summary.stopped and summary.ok
    assert [f.status for f in summary.symbols[0].files] == [FileStatus.LOADED] * 2 + [
        FileStatus.NOT_LOADED
    ] * 3
    assert [f.name for f in summary.not_loaded] == names[2:]
    assert summary.not_loaded[0].reason == "stopped while downloading"
    assert set(imports(database_url)) == set(names[:2])
    assert summary.last_trade_ids[SYMBOL] == stored_text(database_url)[-1][1]
    assert len(stored_text(database_url)) == 10
    assert not any(e.kind is EventKind.REFUSED for e in events)
    assert list((tmp_path / "downloads").glob("*.part")) == []


async def test_trades_already_stored_are_kept_and_the_rest_goes_around_them(
    database_url: str, tmp_path: Path
) -> None:
    """Rows live capture stored in the middle of a file: no conflict error, no duplicate."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 9, 1), date(2024, 9, 2), trades_per_day=2000
    )
    trades = market_trades(market)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur, cur.copy(COPY_TRADES) as cp:
        cp.write(CopyEncoder().encode(trades[700:900]))  # as live capture writes them
    async with ArchiveServer(market) as archive:
        opts = options(archive, date(2024, 9, 1), date(2024, 9, 2), tmp_path, block_bytes=8192)
        summary, _ = await run(opts, database_url)
    [result] = summary.symbols[0].files
    assert (result.rows, result.inserted) == (2000, 1800)
    assert stored_text(database_url) == expected_text(trades)
