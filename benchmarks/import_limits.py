"""What degenerate archive files cost the importer: a CSV line with no end, a zip of blank lines.

Run::

    python benchmarks/import_limits.py blank [MB]            # CSV MB/s of blank lines
    python benchmarks/import_limits.py long-line URL [MB]    # peak RSS of `binprice import`

``blank`` inflates and decodes a zip whose CSV is MB megabytes of empty lines (256 by default;
the zip is about 250 KB: a zip bomb) through the importer's reader, and prints CSV MB/s.
``long-line`` runs ``binprice import`` (a real process, on the database at URL) on a zip whose
CSV is one MB-megabyte line without a newline, and prints the process's peak RSS, its run time
and its refusal line.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from binprice.history._archive import daily
from binprice.history._zip import BLOCK_BYTES, BlockReader
from binprice.testing.archive_files import write_csv_zip

MB = 1 << 20
DEFAULT_MB = 256
FILE = daily("BTCUSDT", date(2024, 3, 1))


def repeated(byte: bytes, megabytes: int) -> Iterator[bytes]:
    """``megabytes`` MB of ``byte``, a megabyte at a time."""
    chunk = byte * MB
    for _ in range(megabytes):
        yield chunk


def blank(megabytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv_zip(Path(tmp) / FILE.name, repeated(b"\n", megabytes))
        began = time.perf_counter()
        with BlockReader(path, FILE, None, BLOCK_BYTES) as blocks:
            size = 0
            while (block := blocks.next()) is not None:
                size += block.size
        seconds = time.perf_counter() - began
    print(f"blank lines: {size / MB:,.0f} MB in {seconds:.2f} s = {size / MB / seconds:,.0f} MB/s")


def long_line(url: str, megabytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv_zip(Path(tmp) / FILE.name, repeated(b"1", megabytes))
        env = dict(os.environ, BINPRICE_DATA_DIR=str(Path(tmp) / "data"))
        command = [sys.executable, "-m", "binprice", "--database-url", url, "import", str(path)]
        began = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    refusals = [line for line in done.stderr.splitlines() if "refused" in line]
    print(
        f"long line: {megabytes} MB, exit {done.returncode} in {seconds:.1f} s, "
        f"peak RSS {peak_mb:,.0f} MB"
    )
    print("\n".join(refusals) or done.stderr[-2000:])


def main() -> None:
    match sys.argv[1:]:
        case ["blank", *rest]:
            blank(int(rest[0]) if rest else DEFAULT_MB)
        case ["long-line", url, *rest]:
            long_line(url, int(rest[0]) if rest else DEFAULT_MB)
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main()
