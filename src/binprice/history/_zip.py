"""A verified zip → decoded CSV blocks, produced by a reader thread a few blocks ahead.

zlib releases the GIL while it inflates, and the COPY side waits on its socket, so the reader
and the loader overlap; the queue is bounded (`QUEUE_BLOCKS`), so memory does not grow with
the file. The zip's CRC-32 is checked as its end is read (zipfile does it): a corrupt member
fails there, before the chunk that holds its last rows is committed.
"""

from __future__ import annotations

import queue
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from binprice.errors import ArchiveFileError
from binprice.history._archive import ArchiveFile
from binprice.history._csv import Block, CsvDecoder, MalformedLine

#: CSV bytes inflated and decoded at a time (~14,000 trades).
BLOCK_BYTES = 1 << 20
#: Decoded blocks waiting for COPY: bounds memory, and is enough to keep PostgreSQL busy.
QUEUE_BLOCKS = 4


class BlockReader:
    """Inflates and decodes the zip's CSV in a thread, a few blocks ahead of COPY."""

    def __init__(
        self,
        path: Path,
        file: ArchiveFile,
        skip_through: int | None,
        block_bytes: int,
        *,
        fields: bool = False,
    ) -> None:
        self._name = file.name
        self._block_bytes = block_bytes
        self._zip = _open_zip(path, self._name)
        self._member = _csv_member(self._zip, self._name)
        self.csv_total = self._member.file_size
        self._decoder = CsvDecoder(
            file.symbol, skip_through, fields=fields, market=file.market, kind=file.kind
        )
        self._queue: queue.Queue[Block | BaseException | None] = queue.Queue(QUEUE_BLOCKS)
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"decode {self._name}")
        self._done = False

    def __enter__(self) -> BlockReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._abandon.set()
        while not self._done:  # unblock the reader, which ends at its next check
            self._take()
        self._thread.join()
        self._zip.close()

    def next(self) -> Block | None:
        """The next block, None at the end; raises ArchiveFileError for a bad file."""
        if self._done:
            return None
        item = self._take()
        if isinstance(item, MalformedLine):
            raise ArchiveFileError(self._name, f"malformed {item}")
        if isinstance(item, BaseException):
            raise ArchiveFileError(self._name, f"corrupt zip: {item}")
        return item

    def _take(self) -> Block | BaseException | None:
        item = self._queue.get()
        if item is None or isinstance(item, BaseException):
            self._done = True
        return item

    def _read(self) -> None:
        try:
            for block in self._blocks():
                self._queue.put(block)
                if self._abandon.is_set():
                    break
        except (MalformedLine, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            self._queue.put(exc)
            return
        self._queue.put(None)

    def _blocks(self) -> Iterator[Block]:
        decoder = self._decoder
        with self._zip.open(self._member) as member:
            while data := member.read(self._block_bytes):
                yield decoder.feed(data)
        yield decoder.finish()


def _open_zip(path: Path, name: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveFileError(name, f"not a readable zip (truncated or corrupt): {exc}") from None


def _csv_member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) != 1 or not members[0].filename.lower().endswith(".csv"):
        names = ", ".join(m.filename for m in members) or "nothing"
        archive.close()
        raise ArchiveFileError(name, f"expected one CSV file inside the zip, found {names}")
    return members[0]
