"""History: every past trade from Binance's public archives (data.binance.vision).

`import_history(options, url)` downloads (or reads from disk) the monthly and daily trade zips
of a date range, verifies each against its published SHA-256 before committing any of its rows,
streams it into `trades` with COPY (nothing is extracted to disk; memory stays flat whatever the
file's size), records every file in the `imports` table (so a re-run skips what is done and an
interrupted one resumes mid-file), and joins the imported ids to the symbol's timeline (holes are
recorded in `gaps`; with `rest_tail` the days not archived yet come from REST). It never
prints: progress arrives through callbacks as typed events.

Modules: `_archive` (layout, names, checksums), `_csv` (CSV lines → COPY text), `_fetch`
(downloads, local files), `_load` (COPY, chunks, the `imports` row), `_pipeline` (the run's
producer and loader, per file), `_importer` (`import_history`: connections, locks, the symbols in
order), `_timeline` (gaps, REST tail), `_results` (events and results). Their SQL lives in
`binprice.db.imports` (the `imports` rows, the import lock, the loader's COPY and staging) and
`binprice.db.gaprows` / `binprice.db.gaps` (stored ids around a range, gap rows).
"""

from binprice.events import EventKind, Severity
from binprice.history._archive import DEFAULT_ARCHIVE_URL, ArchiveFile, Period, parse_name, plan
from binprice.history._importer import import_history
from binprice.history._options import ImportOptions
from binprice.history._results import (
    FileProgress,
    FileResult,
    FileStatus,
    GapResult,
    ImportEvent,
    ImportSummary,
    SymbolResult,
)

__all__ = [
    "DEFAULT_ARCHIVE_URL",
    "ArchiveFile",
    "EventKind",
    "FileProgress",
    "FileResult",
    "FileStatus",
    "GapResult",
    "ImportEvent",
    "ImportOptions",
    "ImportSummary",
    "Period",
    "Severity",
    "SymbolResult",
    "import_history",
    "parse_name",
    "plan",
]
