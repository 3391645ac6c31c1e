"""The on-disk spool: trades that could not be committed yet, safe across crashes.

Each chunk is one file `<sequence>.spool`: a small msgpack header (counts, latest trade per symbol,
trade times) followed by the batch's COPY text, exactly as it will be sent to PostgreSQL, so a
spooled trade is encoded once and never decoded again. A chunk is written to a temporary name,
fsynced, then renamed, so it is either whole or absent. Chunks are replayed oldest first and
deleted only after the transaction that stored them committed.

Every run owns a spool of its own: a directory `run-<pid>-<random>` under the database's spool
root, held by an exclusive `flock` on its `lock` file for as long as the run lives. Several
`binprice ingest` processes on one database therefore never share a file name and never delete
each other's chunks. A run's directory whose lock can be taken belongs to a run that died: the
next run to start adopts its chunks (a rename each, so a chunk is always in exactly one spool)
and removes the directory. The lock is released by the kernel however the owner ends (exit,
SIGKILL, power loss), so a dead owner can never keep its trades from being replayed.

Spooled trades are nobody else's business: every directory the spool makes is 0700 and every
chunk 0600, whatever the umask, and a spool directory an earlier version left open to others
is closed when a run opens it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import struct
from array import array
from collections.abc import Iterator
from pathlib import Path

import msgspec

from binprice._fs import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    create_private_file,
    fsync_dir,
    make_private,
    make_private_dirs,
)
from binprice.db.aggcopy import AggBatch
from binprice.db.copy import Batch
from binprice.db.liverollup import MinuteRow
from binprice.errors import BinpriceError
from binprice.exchange.protocol import SeriesRecord

SUFFIX = ".spool"
MAGIC = b"BPS1"
#: A chunk of aggregate trades (`ingest --stream aggTrade`): its COPY rows are `agg_trades`'.
AGG_MAGIC = b"BPA1"
RUN_PREFIX = "run-"
LOCK_NAME = "lock"
_HEADER_LEN = struct.Struct("!4sI")


class SpoolError(BinpriceError):
    """Raised when the spool cannot be created or written (disk full, read-only, permissions)."""


class _Header(msgspec.Struct, array_like=True):
    counts: dict[str, int]
    latest: dict[str, tuple[int, str, int]]
    times: bytes
    #: The batch's rollup (`Batch.minutes`); absent from a chunk an earlier version wrote.
    minutes: list[MinuteRow] | None = None


def encode_chunk(batch: Batch) -> bytes:
    header = msgspec.msgpack.encode(
        _Header(batch.counts, batch.latest, batch.times.tobytes(), batch.minutes)
    )
    magic = AGG_MAGIC if isinstance(batch, AggBatch) else MAGIC
    return _HEADER_LEN.pack(magic, len(header)) + header + batch.payload


def decode_chunk(data: bytes) -> Batch:
    magic, size = _HEADER_LEN.unpack_from(data)
    if magic not in (MAGIC, AGG_MAGIC):
        raise ValueError("not a binprice spool chunk")
    start = _HEADER_LEN.size
    header = msgspec.msgpack.decode(data[start : start + size], type=_Header)
    times = array("q")
    times.frombytes(header.times)
    kind = AggBatch if magic == AGG_MAGIC else Batch
    return kind(data[start + size :], header.counts, header.latest, times, minutes=header.minutes)


def _one_line(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


class Spool:
    """One run's directory of fsynced trade chunks, oldest first.

    Create it with :meth:`open` (which also adopts what dead runs left); :meth:`close` releases
    it and removes the directory if it is empty.
    """

    def __init__(self, directory: Path, lock_fd: int) -> None:
        self.directory = directory
        self._lock_fd = lock_fd
        self._chunks: list[Path] = []
        #: Bytes on disk per chunk, waiting or checked out (until removed).
        self._sizes: dict[Path, int] = {}
        self._next = 0
        #: Chunks and trades taken over from dead runs when this spool was opened.
        self.adopted_chunks = 0

    @classmethod
    def open(cls, root: Path) -> Spool:
        """A new spool of this run's own under `root`, holding what dead runs left there.

        Raises SpoolError if the directory cannot be created.
        """
        try:
            name = f"{RUN_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            # Made under a temporary name and renamed once locked, so no other run ever sees
            # this directory without its lock held (and takes it for a dead run's).
            staging = root / f".{name}.new"
            _make_dir(root, staging)
            fd = os.open(staging / LOCK_NAME, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            directory = root / name
            os.replace(staging, directory)
        except OSError as exc:
            raise SpoolError(
                f"cannot create the spool in {root}: {_one_line(exc)}; make it writable or set "
                "BINPRICE_DATA_DIR to a writable directory"
            ) from None
        spool = cls(directory, fd)
        spool.adopt_orphans(root)
        return spool

    def adopt_orphans(self, root: Path) -> int:
        """Move into this spool the chunks of every run under `root` that is no longer alive
        (and of the pre-0.2 layout, chunks directly in `root`); return how many."""
        adopted = 0
        legacy = sorted(root.glob(f"*{SUFFIX}"))
        for path in legacy:
            adopted += self._adopt(path)
        for other in sorted(root.glob(f"{RUN_PREFIX}*")):
            if other == self.directory or not other.is_dir():
                continue
            adopted += self._adopt_run(other)
        for stale in root.glob(f".{RUN_PREFIX}*.new"):
            # A run that died between mkdir and rename: nothing was ever spooled there.
            _remove_tree_quietly(stale)
        self.adopted_chunks += adopted
        return adopted

    def _adopt_run(self, other: Path) -> int:
        try:
            fd = os.open(other / LOCK_NAME, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        except OSError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its owner is alive
            adopted = sum(self._adopt(path) for path in sorted(other.glob(f"*{SUFFIX}")))
            _remove_tree_quietly(other)
            return adopted
        finally:
            os.close(fd)

    def _adopt(self, path: Path) -> int:
        target = self._next_path()
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return 0  # another run adopted it first
        self._chunks.append(target)
        with contextlib.suppress(OSError):
            os.chmod(target, PRIVATE_FILE_MODE)  # an earlier version wrote chunks 0644
            self._sizes[target] = target.stat().st_size
        return 1

    def _next_path(self) -> Path:
        path = self.directory / f"{self._next:012d}{SUFFIX}"
        self._next += 1
        return path

    def __len__(self) -> int:
        """Number of chunks waiting (not checked out)."""
        return len(self._chunks)

    @property
    def bytes(self) -> int:
        """Bytes of the chunks on disk (waiting, or checked out and not yet committed)."""
        return sum(self._sizes.values())

    def append(self, batch: Batch) -> Path:
        """Write `batch` as the newest chunk, durably, and return its path.

        Raises SpoolError (nothing is then spooled) if the disk is full or not writable.
        """
        path = self._next_path()
        tmp = path.with_suffix(".tmp")
        data = encode_chunk(batch)
        try:
            with os.fdopen(create_private_file(tmp), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise SpoolError(
                f"cannot write to the spool {self.directory}: {_one_line(exc)}"
            ) from None
        self._chunks.append(path)
        self._sizes[path] = len(data)
        return path

    def peek(self) -> Iterator[list[SeriesRecord]]:
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
        self._sizes.pop(path, None)
        with contextlib.suppress(OSError):
            fsync_dir(self.directory)

    def close(self) -> None:
        """Release the spool; its directory goes if nothing is left in it (else the next run
        adopts what is there)."""
        if self._lock_fd < 0:
            return
        if not any(self.directory.glob(f"*{SUFFIX}")):
            _remove_tree_quietly(self.directory)
            with contextlib.suppress(OSError):
                self.directory.parent.rmdir()  # the database's spool root, if nobody uses it
        os.close(self._lock_fd)
        self._lock_fd = -1


def spool_root(data_dir: Path, url: str) -> Path:
    """Where the runs on database `url` spool: one root per database, so trades spooled for
    one never land in another."""
    import hashlib

    from binprice.db import describe

    digest = hashlib.sha256(describe(url).encode()).hexdigest()[:12]
    return data_dir / "spool" / digest


def _make_dir(root: Path, directory: Path) -> None:
    """`root/directory`, creating `root` if needed — again if a run that just stopped removed
    the empty root between the two steps."""
    for _ in range(3):
        make_private_dirs(root)
        make_private(root)
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileNotFoundError:
            continue
        return
    os.mkdir(directory, PRIVATE_DIR_MODE)


def _remove_tree_quietly(directory: Path) -> None:
    for child in directory.glob("*"):
        with contextlib.suppress(OSError):
            child.unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()
