"""What `binprice export` shows on stderr: the symbols without trades, a Rich progress bar when
stderr is a terminal, and the files written to a directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from binprice.cli._app import err

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from binprice.export_to import ExportPlan


class ExportView:
    """The hooks of one `Store.export`: `plan`, `progress`, `file`; `done` after it."""

    def __init__(self, live: bool) -> None:
        self._live = live
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._files = 0

    def __enter__(self) -> ExportView:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def plan(self, plan: ExportPlan) -> None:
        if plan.missing:
            err(f"no trades for: {', '.join(plan.missing)}")
        if not self._live:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("export"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("trades"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self._bar = Progress(*columns, console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("export", total=plan.trades or None)

    def progress(self, rows: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=rows)

    def file(self, path: Path) -> None:
        self._files += 1

    def done(self, output: str) -> None:
        """After the export: how many of Binance's daily files a directory got."""
        if self._files:
            err(f"wrote {self._files} files to {Path(output)}")
