"""The on-disk spool: trades that could not be committed yet, safe across crashes.

Each chunk is one file `<sequence>.spool`: a small msgpack header (counts, latest trade per symbol,
trade times) followed by the batch's COPY text, exactly as it will be sent to PostgreSQL, so a
spooled trade is encoded once and never decoded again. A chunk is written to a temporary name,
fsynced, then renamed, so it is either whole or absent. Chunks are replayed oldest first and
deleted only after the transaction that stored them committed. The spool is what lets the reader
keep reading through a database outage without unbounded memory, and what carries received trades
across a crash or a stop while the database is down.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Iterator
from pathlib import Path

import msgspec

from binprice.binance import Trade
from binprice.ingest.writer import Batch

SUFFIX = ".spool"
MAGIC = b"BPS1"
_HEADER_LEN = struct.Struct("!4sI")


class _Header(msgspec.Struct, array_like=True):
    counts: dict[str, int]
    latest: dict[str, tuple[int, str, int]]
    times: bytes


def encode_chunk(batch: Batch) -> bytes:
    header = msgspec.msgpack.encode(_Header(batch.counts, batch.latest, batch.times.tobytes()))
    return _HEADER_LEN.pack(MAGIC, len(header)) + header + batch.payload


def decode_chunk(data: bytes) -> Batch:
    magic, size = _HEADER_LEN.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("not a binprice spool chunk")
    start = _HEADER_LEN.size
    header = msgspec.msgpack.decode(data[start : start + size], type=_Header)
    times = array("q")
    times.frombytes(header.times)
    return Batch(data[start + size :], header.counts, header.latest, times)


class Spool:
    """A directory of fsynced trade chunks, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.tmp"):
            stale.unlink()  # a chunk whose write a crash interrupted was never acknowledged
        self._chunks = sorted(directory.glob(f"*{SUFFIX}"))
        self._next = int(self._chunks[-1].stem) + 1 if self._chunks else 0

    def __len__(self) -> int:
        """Number of chunks waiting (not checked out)."""
        return len(self._chunks)

    def append(self, batch: Batch) -> Path:
        """Write `batch` as the newest chunk, durably, and return its path."""
        path = self.directory / f"{self._next:012d}{SUFFIX}"
        self._next += 1
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(encode_chunk(batch))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.directory)
        self._chunks.append(path)
        return path

    def peek(self) -> Iterator[list[Trade]]:
        """The trades of every waiting chunk, oldest first, without checking them out (start-up
        looks in them for gaps a crashed run may not have recorded)."""
        for path in list(self._chunks):
            yield decode_chunk(path.read_bytes()).decoded()

    def take_oldest(self) -> tuple[Path, Batch] | None:
        """Check out the oldest waiting chunk (it stays on disk until `remove`)."""
        if not self._chunks:
            return None
        path = self._chunks.pop(0)
        return path, decode_chunk(path.read_bytes())

    def remove(self, path: Path) -> None:
        """Delete a checked-out chunk once its trades are committed."""
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
