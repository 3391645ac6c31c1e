"""What to import and what the files the archive lacks mean. Pure apart from reading a
local source's list of files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from binprice.errors import UsageError
from binprice.history._archive import ArchiveFile, Period, parse_name, plan
from binprice.history._fetch import LocalSource, Source
from binprice.history._options import ImportOptions
from binprice.history._results import FileResult, FileStatus

#: Days before today the archive may not have published yet (daily files appear the next
#: day, sometimes two days late).
UNPUBLISHED_DAYS = 3


def plan_files(options: ImportOptions, source: Source, end: date) -> dict[str, list[ArchiveFile]]:
    """Per symbol, the files to import, in date order."""
    kind = options.kind_of
    for path in options.files:
        if parse_name(path.name, options.market_of, kind) is None:
            raise UsageError(
                f"{path}: not a Binance {kind} file name (SYMBOL-{kind}-YYYY-MM[-DD].zip)"
            )
    if options.start is not None:
        symbols = options.symbols
        if not symbols and isinstance(source, LocalSource):
            symbols = tuple(sorted({f.symbol for f in source.available()}))
        return {s: plan(s, options.start, end, options.market_of, kind) for s in symbols}
    assert isinstance(source, LocalSource)
    found = [f for f in source.available() if not options.symbols or f.symbol in options.symbols]
    months = {(f.symbol, f.start) for f in found if f.period is Period.MONTHLY}
    plans: dict[str, list[ArchiveFile]] = {}
    for f in found:  # a monthly file makes the same month's daily files redundant
        if f.period is Period.DAILY and (f.symbol, f.start.replace(day=1)) in months:
            continue
        plans.setdefault(f.symbol, []).append(f)
    if not plans:
        raise UsageError(f"no Binance {kind} zips (SYMBOL-{kind}-YYYY-MM[-DD].zip) found")
    return plans


def classify_unavailable(results: list[FileResult], today: date) -> list[FileResult]:
    """Decide what each file the archive does not have means.

    After the archive's last file of the symbol and recent: not published yet. Before its first
    file (the symbol was not listed yet), or after its last and old (delisted): not archived.
    Between files the archive has: missing, a failure. If it has none, old days are missing.
    """
    present = [r.start for r in results if r.status is not FileStatus.MISSING]
    first, last = (min(present), max(present)) if present else (None, None)
    recent = today - timedelta(days=UNPUBLISHED_DAYS)
    out = []
    for r in results:
        if r.status is FileStatus.MISSING:
            if r.start >= recent and (last is None or r.start > last):
                r = _with(r, FileStatus.NOT_PUBLISHED, "not published yet")
            elif first is not None and r.start < first:
                r = _with(r, FileStatus.NOT_ARCHIVED, "before the archive's first file")
            elif last is not None and r.start > last:
                r = _with(r, FileStatus.NOT_ARCHIVED, "after the archive's last file")
        out.append(r)
    return out


UNAVAILABLE = (FileStatus.MISSING, FileStatus.NOT_PUBLISHED, FileStatus.NOT_ARCHIVED)


def unavailable_runs(results: list[FileResult]) -> list[list[FileResult]]:
    """Consecutive files the archive lacks for the same reason, for one line each."""
    runs: list[list[FileResult]] = []
    for r in results:
        if r.status not in UNAVAILABLE:
            continue
        if runs and runs[-1][-1].status is r.status and runs[-1][-1].end == r.start:
            runs[-1].append(r)
        else:
            runs.append([r])
    return runs


def _with(r: FileResult, status: FileStatus, reason: str) -> FileResult:
    return FileResult(r.symbol, r.name, r.start, r.end, status, reason, kind=r.kind)


def compressed_month(file: ArchiveFile, today: date, after: timedelta | None) -> bool:
    """Whether `file` is written compressed: its month ended at least `after` before the
    start of `today` (None: never)."""
    if after is None:
        return False
    start = file.start
    month_end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return _midnight(month_end) + after <= _midnight(today)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def plan_text(files: list[ArchiveFile]) -> str:
    if not files:
        return "nothing to import"
    monthly = sum(f.period is Period.MONTHLY for f in files)
    last = files[-1].end - timedelta(days=1)
    days = f"{files[0].start}" + ("" if last == files[0].start else f" to {last}")
    plural = "s" if len(files) > 1 else ""
    return f"{len(files)} file{plural} ({monthly} monthly, {len(files) - monthly} daily), {days}"
