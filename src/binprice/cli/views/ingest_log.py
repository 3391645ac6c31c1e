"""The `binprice ingest` command's log records: every one a line of the run, in its format.

Imported only by `binprice ingest`. The run itself is `Store.ingest_async`, under the CLI's
signals (`_signals`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from binprice.cli.views.ingest import Monitor
from binprice.ingest import EventKind


class _RunLog(logging.Handler):
    """Log records as the run's own lines, so every line has the run's format (one JSON
    object each with --log-format json): binprice's notices, and the warnings of libraries
    (psycopg logs one when a COPY is cut off by a lost connection)."""

    def __init__(self, monitor: Monitor) -> None:
        super().__init__(logging.INFO)
        self._monitor = monitor

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(record.getMessage().split())
        except Exception:  # a record with bad arguments must not end the run
            self.handleError(record)
            return
        if record.name == "binprice" or record.name.startswith("binprice."):
            self._monitor.message(EventKind.NOTICE, text)
        elif record.levelno >= logging.WARNING:
            self._monitor.message(EventKind.LIBRARY_WARNING, f"{record.name}: {text}")


@contextlib.contextmanager
def log_records_to(monitor: Monitor) -> Iterator[None]:
    """While inside, every log record goes to `monitor` instead of plain lines on stderr."""
    ours = logging.getLogger("binprice")
    root = logging.getLogger()
    handler = _RunLog(monitor)
    saved, level = ours.handlers[:], ours.level
    for plain in saved:
        ours.removeHandler(plain)
    ours.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        ours.setLevel(level)
        for plain in saved:
            ours.addHandler(plain)
