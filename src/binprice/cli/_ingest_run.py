"""The `binprice ingest` command's process side: signals, the event loop, the monitor.

Imported only by `binprice ingest`, so the query commands never load asyncio machinery or
aiohttp. The CLI owns the signals: the first SIGINT/SIGTERM sets the stop event (the pipeline
flushes, commits and returns its summary), a second one aborts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

from binprice.cli._monitor import Monitor
from binprice.errors import AbortedError
from binprice.ingest import EventKind, IngestConfig, IngestSummary, run_ingest
from binprice.ingest.recorder import Recorder

TICK_SECONDS = 0.25


def run(config: IngestConfig, url: str, monitor: Monitor) -> IngestSummary:
    """Run the ingest until it ends by itself or is interrupted; exit code 0 on a clean stop."""
    try:
        return asyncio.run(_main(config, url, monitor))
    except asyncio.CancelledError:
        raise AbortedError(
            "aborted; trades received but not committed are in the spool and will be "
            "committed by the next `binprice ingest`"
        ) from None


async def _main(config: IngestConfig, url: str, monitor: Monitor) -> IngestSummary:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    recorder = Recorder()
    main_task = asyncio.current_task()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(signum: int) -> None:
        if not stop.is_set():
            monitor.message(
                EventKind.STOPPING, "stopping: committing what was received (again to abort)"
            )
            stop.set()
        elif main_task is not None:
            main_task.cancel()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    monitor.start()
    ticker = asyncio.create_task(_tick(monitor, recorder))
    try:
        summary = await run_ingest(
            config,
            url,
            stop=stop,
            on_event=monitor.event,
            recorder=recorder,
            on_stored=monitor.stored if monitor.verbose else None,
        )
    finally:
        ticker.cancel()
        monitor.stop()
        for signum in signals:
            loop.remove_signal_handler(signum)
    monitor.final(summary)
    return summary


async def _tick(monitor: Monitor, recorder: Recorder) -> None:
    while True:
        await asyncio.sleep(TICK_SECONDS)
        monitor.tick(recorder)


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
