"""The test archive server: Binance's layout and format, its fault knobs, its command line."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import sys
import zipfile
from datetime import date
from pathlib import Path

import aiohttp

from binprice.history._archive import daily, monthly
from binprice.testing.archive import ArchiveFaults, ArchiveServer
from binprice.testing.archive_files import ArchiveMarket, sub_millisecond, write_tree

SYMBOL = "BTCUSDT"


async def _get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.read()


def _lines(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        [member] = archive.infolist()
        return [member.filename, *archive.read(member).decode().splitlines()]


async def test_files_are_in_binance_layout_and_format_with_matching_checksums() -> None:
    """A day of 2024 in ms, of 2025 in µs (floor-exact), CHECKSUM as sha256sum prints it,
    the CSV named like the zip, the ids and prices of the test exchange's generator."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 12, 31), date(2025, 1, 2), trades_per_day=4
    )
    async with ArchiveServer(market) as archive:
        for day, micros in ((date(2024, 12, 31), False), (date(2025, 1, 1), True)):
            file = daily(SYMBOL, day)
            status, data = await _get(f"{archive.url}/{file.path}")
            assert status == 200
            _, checksum = await _get(f"{archive.url}/{file.checksum_path}")
            assert checksum.decode() == f"{hashlib.sha256(data).hexdigest()}  {file.name}\n"
            name, *lines = _lines(data)
            assert name == file.name.replace(".zip", ".csv")
            trades = list(market.trades(file))
            assert len(lines) == 4
            for line, t in zip(lines, trades, strict=True):
                fields = line.split(",")
                assert fields[:3] == [str(t.trade_id), f"{t.price:f}", f"{t.quantity:f}"]
                assert fields[5:] == ["True" if t.is_buyer_maker else "False", "True"]
                stamp = t.time_ms * 1000 + sub_millisecond(t.trade_id) if micros else t.time_ms
                assert fields[4] == str(stamp)
        status, _ = await _get(f"{archive.url}/data/spot/monthly/trades/{SYMBOL}/x.zip")
        assert status == 404
    gen = market.generators[SYMBOL]
    assert market.trades(daily(SYMBOL, date(2024, 12, 31))).__next__().trade_id == gen.first_id


async def test_fault_knobs_do_what_they_say() -> None:
    """Wrong checksum, truncated zip, missing day, unpublished days, dropped ids, republish."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 1, 1), date(2024, 2, 3), trades_per_day=5)
    day1, day2, day3 = (daily(SYMBOL, date(2024, 2, d)) for d in (1, 2, 3))
    faults = ArchiveFaults(
        wrong_checksum={day1.name},
        truncated={monthly(SYMBOL, 2024, 1).name},
        dropped={day2.name: {next(market.trades(day2)).trade_id}},
        missing={daily(SYMBOL, date(2024, 1, 5)).name},
    )
    async with ArchiveServer(market, faults) as archive:
        data = (await _get(f"{archive.url}/{day1.path}"))[1]
        checksum = (await _get(f"{archive.url}/{day1.checksum_path}"))[1].split()[0].decode()
        assert checksum != hashlib.sha256(data).hexdigest()
        month = monthly(SYMBOL, 2024, 1)
        cut = (await _get(f"{archive.url}/{month.path}"))[1]
        assert (await _get(f"{archive.url}/{month.checksum_path}"))[1].split()[0].decode() == (
            hashlib.sha256(cut).hexdigest()
        )
        try:
            zipfile.ZipFile(io.BytesIO(cut))
            raise AssertionError("a truncated zip opened")
        except zipfile.BadZipFile:
            pass
        assert len(_lines((await _get(f"{archive.url}/{day2.path}"))[1])) == 1 + 4
        assert (await _get(f"{archive.url}/{daily(SYMBOL, date(2024, 1, 5)).path}"))[0] == 404
        archive.faults.unpublished_from = date(2024, 2, 3)
        assert (await _get(f"{archive.url}/{day3.checksum_path}"))[0] == 404
        before = (await _get(f"{archive.url}/{day2.checksum_path}"))[1]
        archive.republish(day2.name)
        after = (await _get(f"{archive.url}/{day2.checksum_path}"))[1]
        assert before != after
        assert len(_lines((await _get(f"{archive.url}/{day2.path}"))[1])) == 1 + 5


async def test_a_stalled_download_sends_half_then_waits_until_the_server_stops() -> None:
    """The stall knob: half the zip arrives, `stalled` is set, the rest never comes; stopping
    the server ends the stalled response (the client sees the body cut short)."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 1, 1), date(2024, 1, 2), trades_per_day=50)
    file = daily(SYMBOL, date(2024, 1, 1))
    received = bytearray()
    async with aiohttp.ClientSession() as session:
        async with ArchiveServer(market, ArchiveFaults(stalled={file.name})) as archive:
            whole, _ = archive.content(file.name)
            resp = await session.get(f"{archive.url}/{file.path}")
            assert resp.status == 200 and resp.content_length == len(whole)
            received += await resp.content.readexactly(len(whole) // 2)
            async with asyncio.timeout(10):
                await archive.stalled.wait()
            rest = asyncio.ensure_future(resp.content.read())
        # Stopped: the stalled response ends, and nothing past the half was ever sent.
        with contextlib.suppress(aiohttp.ClientPayloadError):
            received += await rest
        resp.release()
    assert bytes(received) == whole[: len(whole) // 2]


async def test_rest_serves_the_same_market(tmp_path: Path) -> None:
    """With rest=True, historicalTrades pages come from the archive's own generators."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 1, 1), date(2024, 1, 2), trades_per_day=6)
    first = market.generators[SYMBOL].first_id
    async with ArchiveServer(market, rest=True) as archive:
        status, body = await _get(
            f"{archive.url}/api/v3/historicalTrades?symbol={SYMBOL}&fromId={first + 2}&limit=2"
        )
    assert status == 200
    rows = json.loads(body)
    trades = list(market.trades(daily(SYMBOL, date(2024, 1, 1))))
    assert [r["id"] for r in rows] == [first + 2, first + 3]
    assert rows[0]["price"] == f"{trades[2].price:f}" and rows[0]["time"] == trades[2].time_ms


async def test_a_directory_tree_is_served_as_it_is(tmp_path: Path) -> None:
    """An archive written to disk (or built elsewhere) is served byte for byte."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 1, 1), date(2024, 1, 2), trades_per_day=3)
    [path] = write_tree(market, tmp_path)
    async with ArchiveServer(directory=tmp_path) as archive:
        file = daily(SYMBOL, date(2024, 1, 1))
        assert (await _get(f"{archive.url}/{file.path}"))[1] == path.read_bytes()
        checksum = (await _get(f"{archive.url}/{file.checksum_path}"))[1]
        assert checksum == path.with_name(path.name + ".CHECKSUM").read_bytes()
        assert (await _get(f"{archive.url}/{daily(SYMBOL, date(2024, 1, 2)).path}"))[0] == 404


async def test_the_command_line_prints_its_url_and_serves() -> None:
    """`binprice archive --port 0` announces one JSON line, then serves."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "binprice",
        "archive",
        "--port",
        "0",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-02",
        "--trades-per-day",
        "3",
        "--rest",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            announced = json.loads(await proc.stdout.readline())
        file = daily(SYMBOL, date(2024, 1, 1))
        status, data = await _get(f"{announced['url']}/{file.path}")
        assert status == 200 and len(_lines(data)) == 1 + 3
        assert announced["rest_url"] == announced["url"]
    finally:
        proc.terminate()
        await proc.wait()
