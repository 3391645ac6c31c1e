"""The loop of `binprice watch`: poll, draw, wait; Ctrl+C ends it with exit status 0."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg
import typer

from binprice.cli._watch_view import to_line, to_table
from binprice.watch import Watch


def run_watch(
    conn: psycopg.Connection[Any],
    symbols: Sequence[str],
    window: timedelta,
    every: timedelta,
    count: int | None,
) -> None:
    """Poll every ``every`` (``count`` times, or until Ctrl+C): a live table on a terminal,
    one line per update elsewhere."""
    source = Watch(conn, symbols, window=window)
    done = 0
    try:
        if sys.stdout.isatty():
            from rich.console import Console
            from rich.live import Live

            console = Console()
            # We redraw on every poll ourselves; Rich's own refresh thread would add nothing.
            first = to_table(source.poll(), columns=console.width)
            with Live(first, console=console, auto_refresh=False) as live:
                done = 1
                while count is None or done < count:
                    time.sleep(every.total_seconds())
                    live.update(to_table(source.poll(), columns=console.width), refresh=True)
                    done += 1
        else:
            while count is None or done < count:
                if done:
                    time.sleep(every.total_seconds())
                typer.echo(to_line(source.poll()))
                sys.stdout.flush()
                done += 1
    except KeyboardInterrupt:
        return  # the user's way to stop: not an error
