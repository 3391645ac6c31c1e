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

From a shell (an installed binprice)::

    binprice archive --port 8080 --symbols BTCUSDT --start 2024-12-01 --end 2025-02-01 --rest

It prints one JSON line with ``url`` (and ``rest_url``) once it listens.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType

from aiohttp import web

from binprice.history._archive import CHECKSUM_SUFFIX, ArchiveFile, checksum_text, parse_name
from binprice.markets import Market
from binprice.testing.archive_files import (
    MICROS_FROM,
    ArchiveMarket,
    lines_zip,
    sha256_hex,
    zip_bytes,
)
from binprice.testing.archive_kinds import ArchivePath, file_lines, parse_path
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
        # Aggregate trades and the futures markets' files (testing/archive_kinds.py).
        app.router.add_get("/data/{tail:.+}", self._handle_other)
        if self._rest:
            if self.market is None or not self.market.generators:
                raise ValueError("REST needs a generated market")
            rest = RestApi(self.market.generators, {}, Faults(), market=self.market.market)
            app.router.add_routes(rest.routes())
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        self._stack.callback(self._released.set)  # first: stalled downloads end, then cleanup
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._port = runner.addresses[0][1]

    @property
    def serves_rest(self) -> bool:
        return self._rest

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def republish(self, name: str) -> None:
        """Publish ``name`` again, fixed: its faults cleared, new bytes, a new checksum."""
        faults = self.faults
        for names in (
            faults.wrong_checksum, faults.truncated, faults.corrupt, faults.missing, faults.stalled
        ):  # fmt: skip
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
        if not self._published(file) or (
            self.market is not None and self.market.market is not Market.SPOT
        ):
            raise web.HTTPNotFound()
        data, digest = self.content(zip_name)
        if name.endswith(CHECKSUM_SUFFIX):
            return web.Response(body=checksum_text(digest, zip_name).encode())
        if zip_name in self.faults.stalled:
            return await self._stall(request, data)
        return web.Response(body=data, content_type="application/zip")

    async def _handle_other(self, request: web.Request) -> web.StreamResponse:
        """A file of another kind or market than Spot trades: served from the same market when
        it is of the market's folder, with the same faults by name."""
        self.requests.append(request.path)
        key = parse_path(request.path.removesuffix(CHECKSUM_SUFFIX))
        if self.directory is not None:
            path = self.directory / request.path.lstrip("/")
            if key is None or not path.is_file():
                raise web.HTTPNotFound()
            return web.FileResponse(path)
        if (
            key is None
            or self.market is None
            or key.market is not self.market.market
            or key.name in self.faults.missing
            or not self.market.generators
            or not self._published(key.file)
        ):
            raise web.HTTPNotFound()
        cached = self._files.get(key.name)
        if cached is None:
            cached = self._files[key.name] = self._build_other(key)
        data, digest = cached
        if request.path.endswith(CHECKSUM_SUFFIX):
            return web.Response(body=checksum_text(digest, key.name).encode())
        return web.Response(body=data, content_type="application/zip")

    def _build_other(self, key: ArchivePath) -> tuple[bytes, str]:
        assert self.market is not None
        lines = file_lines(self.market, key, micros_from=self.faults.micros_from)
        data = lines_zip(key.name, lines, version=self.versions.get(key.name, 0))
        digest = sha256_hex(data)
        if key.name in self.faults.wrong_checksum:
            digest = sha256_hex(data + b"not these bytes")
        return data, digest

    async def _stall(self, request: web.Request, data: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        response.content_type = "application/zip"
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        self.stalled.set()
        await self._released.wait()
        return response
