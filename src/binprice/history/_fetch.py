"""Where archive files come from: the archive service over HTTP, or files on disk.

Both sources answer the same two questions: the published checksum of a file (None if the
file is not there), and a verified local zip to read. A download is spooled to disk while it is
hashed (a zip can only be read from a seekable file: its directory is at the end; a monthly
BTCUSDT zip is over a gigabyte, so it cannot sit in memory) and renamed into place only if its
SHA-256 matches; nothing of a file reaches the database before that. The CSV inside is never
extracted. A verified zip left by an interrupted run is re-hashed and reused, not downloaded
again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import aiohttp

from binprice._fs import sha256_file
from binprice.errors import ArchiveFileError, ArchiveUnavailableError
from binprice.history._archive import CHECKSUM_SUFFIX, ArchiveFile, parse_checksum, parse_name
from binprice.kinds import TradeKind
from binprice.markets import Market

DOWNLOAD_CHUNK_BYTES = 1 << 20
REQUEST_TIMEOUT_SECONDS = 30
#: A download may take long (a gigabyte); only a stalled read is an error.
READ_TIMEOUT_SECONDS = 60
ATTEMPTS = 3
RETRY_BASE_SECONDS = 0.5

Sleep = Callable[[float], Awaitable[None]]


def _mismatch(name: str, expected: str, actual: str) -> ArchiveFileError:
    return ArchiveFileError(
        name, f"checksum mismatch: the CHECKSUM file says {expected}, the zip hashes to {actual}"
    )


class ArchiveSource:
    """The archive service (data.binance.vision or a mirror) at `base_url`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        spool_dir: Path,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._spool = spool_dir
        self._sleep = sleep

    def url(self, file: ArchiveFile) -> str:
        return f"{self.base_url}/{file.path}"

    async def checksum(self, file: ArchiveFile) -> str | None:
        """The published SHA-256 of `file`, or None if the archive does not have it (404)."""
        body = await self._get(f"{self.url(file)}{CHECKSUM_SUFFIX}", file.name)
        if body is None:
            return None
        try:
            return parse_checksum(body.decode("utf-8", errors="replace"), file.name)
        except ValueError as exc:
            raise ArchiveFileError(file.name, str(exc)) from None

    async def _get(self, url: str, name: str) -> bytes | None:
        failure = ""
        for attempt in range(ATTEMPTS):
            try:
                timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
                async with self._session.get(url, timeout=timeout) as resp:
                    if resp.status == 404:
                        return None
                    if resp.status == 200:
                        return await resp.read()
                    failure = f"HTTP {resp.status}"
                    if resp.status < 500:
                        break  # 403 and friends do not get better by asking again
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = str(exc) or exc.__class__.__name__
            await self._sleep(RETRY_BASE_SECONDS * 2**attempt)
        raise ArchiveUnavailableError(f"cannot fetch {name} from {self.base_url}: {failure}")

    async def fetch(self, file: ArchiveFile, sha256: str) -> Path:
        """A local copy of `file` whose SHA-256 is `sha256`; raises ArchiveFileError if the
        archive's zip does not match its CHECKSUM."""
        self._spool.mkdir(parents=True, exist_ok=True)
        target = self._spool / file.name
        if target.exists():  # left by an interrupted run: reuse it if it still verifies
            if await asyncio.to_thread(sha256_file, target) == sha256:
                return target
            target.unlink()
        part = self._spool / f"{file.name}.{os.getpid()}.part"
        try:
            actual = await self._download(file, part)
            if actual != sha256:
                raise _mismatch(file.name, sha256, actual)
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)
        return target

    async def _download(self, file: ArchiveFile, part: Path) -> str:
        failure = ""
        for attempt in range(ATTEMPTS):
            digest = hashlib.sha256()
            try:
                timeout = aiohttp.ClientTimeout(
                    total=None, connect=REQUEST_TIMEOUT_SECONDS, sock_read=READ_TIMEOUT_SECONDS
                )
                async with self._session.get(self.url(file), timeout=timeout) as resp:
                    if resp.status == 404:
                        raise ArchiveFileError(
                            file.name, "the archive has its CHECKSUM but not the zip"
                        )
                    if resp.status == 200:
                        with part.open("wb") as out:
                            async for chunk in resp.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                                digest.update(chunk)
                                out.write(chunk)
                        return digest.hexdigest()
                    failure = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                # A connection cut mid-body (ClientPayloadError) lands here: start over.
                failure = str(exc) or exc.__class__.__name__
            await self._sleep(RETRY_BASE_SECONDS * 2**attempt)
        raise ArchiveFileError(file.name, f"download from {self.base_url} failed: {failure}")

    def describe(self, file: ArchiveFile) -> str:
        return self.url(file)

    def unlink(self, path: Path) -> None:
        """Remove a spooled download once its file is done with."""
        if path.parent == self._spool:
            path.unlink(missing_ok=True)


class LocalSource:
    """Zips on disk: folders (the archive's layout, or flat) and explicit paths.

    A zip's CHECKSUM is read from beside it; if there is none, it is asked of `fallback` (the
    archive service), since hand-downloaded files often come without one.
    """

    def __init__(
        self,
        folders: Iterable[Path],
        paths: Iterable[Path],
        fallback: ArchiveSource | None,
        market: Market = Market.SPOT,
        kind: TradeKind = TradeKind.TRADES,
    ) -> None:
        #: The market the files are taken to be of (their names do not say).
        self.market = market
        #: The kind of files taken (`-trades-` or `-aggTrades-` names); others are skipped.
        self.kind = kind
        self.files: dict[str, Path] = {}
        self.unrecognised: list[Path] = []
        for folder in folders:
            if not folder.is_dir():
                raise ArchiveFileError(str(folder), "no such folder")
            for path in sorted(folder.rglob("*.zip")):
                self._add(path)
        for path in paths:
            if not path.is_file():
                raise ArchiveFileError(str(path), "no such file")
            self._add(path)
        self._fallback = fallback

    def _add(self, path: Path) -> None:
        if parse_name(path.name, self.market, self.kind) is None:
            self.unrecognised.append(path)
        else:
            self.files.setdefault(path.name, path)

    def available(self) -> list[ArchiveFile]:
        """Every recognised file, by symbol and date."""
        found = (parse_name(name, self.market, self.kind) for name in self.files)
        return sorted(f for f in found if f is not None)

    async def checksum(self, file: ArchiveFile) -> str | None:
        path = self.files.get(file.name)
        if path is None:
            return None
        beside = path.with_name(path.name + CHECKSUM_SUFFIX)
        if beside.is_file():
            try:
                return parse_checksum(beside.read_text(errors="replace"), file.name)
            except ValueError as exc:
                raise ArchiveFileError(file.name, str(exc)) from None
        if self._fallback is not None:
            try:
                published = await self._fallback.checksum(file)
            except ArchiveUnavailableError as exc:
                raise ArchiveFileError(
                    file.name, f"no {beside.name} beside it, and the archive is unreachable: {exc}"
                ) from None
            if published is not None:
                return published
        raise ArchiveFileError(file.name, f"no {beside.name} beside it to verify it against")

    async def fetch(self, file: ArchiveFile, sha256: str) -> Path:
        path = self.files[file.name]
        actual = await asyncio.to_thread(sha256_file, path)
        if actual != sha256:
            raise _mismatch(file.name, sha256, actual)
        return path

    def describe(self, file: ArchiveFile) -> str:
        return str(self.files.get(file.name, file.name))

    def unlink(self, path: Path) -> None:
        """Files the user placed are never removed."""


Source = ArchiveSource | LocalSource
