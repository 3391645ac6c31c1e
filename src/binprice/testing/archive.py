"""A stand-in for data.binance.vision: trade zips and CHECKSUM files in the real layout.

In tests::

    market = ArchiveMarket.generate(["BTCUSDT"], date(2024, 12, 1), date(2025, 2, 1))
    async with ArchiveServer(market, ArchiveFaults(missing={"BTCUSDT-trades-2024-12-05.zip"}),
                             rest=True) as archive:
        options = ImportOptions(("BTCUSDT",), start=..., archive_url=archive.url,
                                rest_url=archive.url)

Files are made on first request from the market (the test exchange's generator, so the same ids
and prices as the exchange) and kept; with ``rest=True`` the server also answers the exchange's
REST API (``historicalTrades`` and friends) from the same generators. ``directory`` serves an
existing tree instead (an archive built elsewhere, or by :func:`write_tree`). Fault knobs, by
file name: a wrong CHECKSUM, a truncated or corrupt zip (its CHECKSUM matches the damaged bytes,
so only reading the zip can tell), a malformed line, a missing file, ids left out of a file (a
hole in the archive), days not published yet, a download that stalls half way (until the
server stops; :attr:`ArchiveServer.stalled` is set once it does), and
:meth:`ArchiveServer.republish`.

From a shell::

    python -m binprice.testing.archive --port 8080 --symbols BTCUSDT --start 2024-12-01 \\
        --end 2025-02-01 --trades-per-day 1000 --rest

It prints one JSON line with ``url`` (and ``rest_url``) once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType

import msgspec
from aiohttp import web

from binprice.history._archive import CHECKSUM_SUFFIX, ArchiveFile, checksum_text, parse_name
from binprice.testing.archive_files import MICROS_FROM, ArchiveMarket, sha256_hex, zip_bytes
from binprice.testing.faults import Faults
from binprice.testing.rest import RestApi

_CORRUPT_OFFSET = 0.5


@dataclass(slots=True)
class ArchiveFaults:
    """What the archive gets wrong, by file name. Defaults: a healthy archive."""

    #: The CHECKSUM file names a hash the zip does not have.
    wrong_checksum: set[str] = field(default_factory=set)
    #: The zip is cut in half (and its CHECKSUM is of the cut bytes).
    truncated: set[str] = field(default_factory=set)
    #: A byte inside the compressed data is flipped (and its CHECKSUM matches).
    corrupt: set[str] = field(default_factory=set)
    #: Line index (0-based) → the text that replaces it.
    malformed: dict[str, dict[int, str]] = field(default_factory=dict)
    #: The zip's download sends half its bytes, then nothing until the server stops.
    stalled: set[str] = field(default_factory=set)
    #: Neither the zip nor its CHECKSUM exists (404).
    missing: set[str] = field(default_factory=set)
    #: Trade ids left out of a file: a hole in the archive (REST still has them).
    dropped: dict[str, set[int]] = field(default_factory=dict)
    #: Days from this one on are not published yet (daily files, and months not over before).
    unpublished_from: date | None = None
    #: Files of periods starting on or after this day carry microseconds.
    micros_from: date = MICROS_FROM


class ArchiveServer:
    """The archive, runnable in-process as an async context manager."""

    __test__ = False

    def __init__(
        self,
        market: ArchiveMarket | None = None,
        faults: ArchiveFaults | None = None,
        *,
        directory: Path | None = None,
        rest: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if market is None and directory is None:
            raise ValueError("give a market or a directory to serve")
        self.market = market
        self.faults = faults or ArchiveFaults()
        self.directory = directory
        self.versions: dict[str, int] = {}
        #: Paths requested, in order (tests check what was downloaded).
        self.requests: list[str] = []
        self._files: dict[str, tuple[bytes, str]] = {}
        #: Set once a stalled download has sent its half and stalls (tests wait on it).
        self.stalled = asyncio.Event()
        self._released = asyncio.Event()
        self._rest = rest
        self._host, self._port = host, port
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> ArchiveServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/data/spot/{period}/trades/{symbol}/{name}", self._handle)
        if self._rest:
            if self.market is None or not self.market.generators:
                raise ValueError("REST needs a generated market")
            app.router.add_routes(RestApi(self.market.generators, {}, Faults()).routes())
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        self._stack.callback(self._released.set)  # first: stalled downloads end, then cleanup
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._port = runner.addresses[0][1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def republish(self, name: str) -> None:
        """Publish ``name`` again, fixed: its faults cleared, new bytes, a new checksum."""
        faults = self.faults
        for names in (
            faults.wrong_checksum,
            faults.truncated,
            faults.corrupt,
            faults.missing,
            faults.stalled,
        ):
            names.discard(name)
        faults.malformed.pop(name, None)
        faults.dropped.pop(name, None)
        self.versions[name] = self.versions.get(name, 0) + 1
        self._files.pop(name, None)

    def content(self, name: str) -> tuple[bytes, str]:
        """The zip's bytes as served and the checksum its CHECKSUM file gives."""
        cached = self._files.get(name)
        if cached is None:
            cached = self._files[name] = self._build(name)
        return cached

    def _build(self, name: str) -> tuple[bytes, str]:
        file = parse_name(name)
        assert file is not None and self.market is not None
        faults = self.faults
        dropped = faults.dropped.get(name, set())
        trades = (t for t in self.market.trades(file) if t.trade_id not in dropped)
        data = zip_bytes(
            file,
            trades,
            micros_from=faults.micros_from,
            version=self.versions.get(name, 0),
            lines=faults.malformed.get(name),
        )
        if name in faults.truncated:
            data = data[: len(data) // 2]
        if name in faults.corrupt:
            at = int(len(data) * _CORRUPT_OFFSET)
            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
        digest = sha256_hex(data)
        if name in faults.wrong_checksum:
            digest = sha256_hex(data + b"not these bytes")
        return data, digest

    def _published(self, file: ArchiveFile) -> bool:
        if self.market is not None and file.symbol not in self.market.records:
            return False
        if self.market is not None and not (
            self.market.start <= file.start and file.end <= self.market.end
        ):
            return False
        until = self.faults.unpublished_from
        return until is None or file.end <= until

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        name = request.match_info["name"]
        zip_name = name.removesuffix(CHECKSUM_SUFFIX)
        file = parse_name(zip_name)
        if (
            file is None
            or file.path != request.path.lstrip("/").removesuffix(CHECKSUM_SUFFIX)
            or zip_name in self.faults.missing
        ):
            raise web.HTTPNotFound()
        if self.directory is not None:
            path = self.directory / request.path.lstrip("/")
            if not path.is_file():
                raise web.HTTPNotFound()
            return web.FileResponse(path)
        if not self._published(file):
            raise web.HTTPNotFound()
        data, digest = self.content(zip_name)
        if name.endswith(CHECKSUM_SUFFIX):
            return web.Response(body=checksum_text(digest, zip_name).encode())
        if zip_name in self.faults.stalled:
            return await self._stall(request, data)
        return web.Response(body=data, content_type="application/zip")

    async def _stall(self, request: web.Request, data: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        response.content_type = "application/zip"
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        self.stalled.set()
        await self._released.wait()
        return response


# --- command line --------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m binprice.testing.archive",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--directory", type=Path, help="serve this tree instead of a market")
    p.add_argument("--symbols", default="BTCUSDT", help="comma-separated")
    p.add_argument("--start", type=date.fromisoformat, default=date(2024, 12, 1))
    p.add_argument("--end", type=date.fromisoformat, default=date(2025, 2, 1), help="exclusive")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trades-per-day", type=int, default=1000)
    p.add_argument("--rest", action="store_true", help="also serve REST from the same market")
    faults = p.add_argument_group("faults (by file name, repeatable)")
    for flag in ("wrong-checksum", "truncated", "corrupt", "missing", "stalled"):
        faults.add_argument(f"--{flag}", action="append", default=[], metavar="NAME")
    faults.add_argument("--unpublished-from", type=date.fromisoformat, metavar="DATE")
    faults.add_argument("--micros-from", type=date.fromisoformat, default=MICROS_FROM)
    return p.parse_args(argv)


def server_from_args(args: argparse.Namespace) -> ArchiveServer:
    faults = ArchiveFaults(
        wrong_checksum=set(args.wrong_checksum),
        truncated=set(args.truncated),
        corrupt=set(args.corrupt),
        missing=set(args.missing),
        stalled=set(args.stalled),
        unpublished_from=args.unpublished_from,
        micros_from=args.micros_from,
    )
    if args.directory is not None:
        return ArchiveServer(None, faults, directory=args.directory, host=args.host, port=args.port)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    market = ArchiveMarket.generate(
        symbols, args.start, args.end, seed=args.seed, trades_per_day=args.trades_per_day
    )
    return ArchiveServer(market, faults, rest=args.rest, host=args.host, port=args.port)


async def serve(server: ArchiveServer) -> None:
    """Run until SIGINT/SIGTERM, announcing the URL as one JSON line on stdout."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        announcement = {"url": server.url}
        if server.market is not None and server.market.generators and server._rest:
            announcement["rest_url"] = server.url
        sys.stdout.write(msgspec.json.encode(announcement).decode() + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(serve(server_from_args(_parse_args(argv))))


if __name__ == "__main__":
    main()
