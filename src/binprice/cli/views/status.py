"""What `binprice status` shows: coverage at a glance, per symbol and for the database.

On a terminal a Rich table, two lines per symbol (first and last trade, id and time, one
above the other) so that it reads at 80 columns; in a pipe one plain line per symbol with every
column; `--json` one object with stable keys.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.table import Table

    from binprice import MonthStatus, Status, SymbolStatus

#: Columns of the plain text (a pipe): one line per symbol, the JSON keys of a symbol.
TEXT_COLUMNS = (
    "symbol",
    "first_id",
    "first_at",
    "last_id",
    "last_at",
    "trades",
    "open_gaps",
    "open_gap_ids",
    "last_trade_age_ms",
)
_NUMERIC = frozenset(
    {"first_id", "last_id", "trades", "open_gaps", "open_gap_ids", "last_trade_age_ms"}
)
_NONE = "-"
_MILLISECOND = timedelta(milliseconds=1)


def show(result: Status, *, as_json: bool) -> None:
    """`--json`, a Rich table on a terminal, plain aligned text in a pipe."""
    if as_json:
        typer.echo(status_json(result))
    elif sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        if result.symbols:
            console.print(status_table(result))
        console.print(footer(result), highlight=False)
    else:
        typer.echo(status_text(result), nl=False)


def status_json(result: Status) -> str:
    """One object: the database's figures, then one object per symbol, stable keys."""
    import json

    from binprice.timespec import format_timestamp

    return json.dumps(
        {
            "checked_at": format_timestamp(result.checked_at),
            "database_bytes": result.database_bytes,
            "trades_bytes": result.trades_bytes,
            "partitions": result.partitions,
            "default_rows": result.default_rows,
            "pruned_before": _json_time(result.pruned_before),
            "trades": result.trades,
            "symbols": [
                {
                    "symbol": s.symbol,
                    "first_id": s.first_id,
                    "first_at": _json_time(s.first_at),
                    "last_id": s.last_id,
                    "last_at": _json_time(s.last_at),
                    "trades": s.trades,
                    "open_gaps": s.open_gaps,
                    "open_gap_ids": s.open_gap_ids,
                    "last_trade_age_ms": _age_ms(s),
                }
                for s in result.symbols
            ],
            "months": [
                {
                    "month": f"{m.month:%Y-%m}",
                    "storage": m.storage,
                    "trades": m.trades,
                    "bytes": m.bytes,
                    "bytes_per_trade": m.bytes_per_trade,
                }
                for m in result.months
            ],
        },
        indent=2,
    )


def status_table(result: Status) -> Table:
    """A Rich table for a terminal: first and last trade stacked, so it fits 80 columns."""
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("symbol", no_wrap=True)
    table.add_column("trades", justify="right", no_wrap=True)
    table.add_column("gaps", justify="right", no_wrap=True)
    # Headers no wider than their values: the widest row must still fit 80 columns.
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("first / last trade", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    for s in result.symbols:
        table.add_row(
            s.symbol,
            f"{s.trades:,}",
            f"{s.open_gaps:,}",
            f"{_id(s.first_id)}\n{_id(s.last_id)}",
            f"{_time(s.first_at)}\n{_time(s.last_at)}",
            _age(s),
        )
    return table


def status_text(result: Status) -> str:
    """Plain aligned text for a pipe: one line per symbol with every column, then the footer."""
    rows = [list(TEXT_COLUMNS)] + [_text_row(s) for s in result.symbols]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TEXT_COLUMNS))]
    lines = [
        "  ".join(
            cell.rjust(width) if key in _NUMERIC else cell.ljust(width)
            for key, cell, width in zip(TEXT_COLUMNS, row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
    body = "\n".join(lines) + "\n" if result.symbols else ""
    return body + footer(result) + "\n"


def footer(result: Status) -> str:
    """The database's lines (each under 80 columns): totals and sizes, pruned history, rows
    waiting in the DEFAULT partition."""
    # The size format of `db info`, so both commands print sizes alike.
    from binprice.cli.views.db import size_text

    count = len(result.symbols)
    lines = [
        f"{result.trades:,} trades of {count} symbol{'s' if count != 1 else ''}; trades "
        f"{size_text(result.trades_bytes)} in {result.partitions} monthly partitions",
        f"database {size_text(result.database_bytes)} at {_time(result.checked_at)}",
    ]
    lines += month_lines(result.months)
    if result.pruned_before is not None:
        lines.append(f"history before {_time(result.pruned_before)} was pruned (`db prune`)")
    if result.default_rows:
        lines.append(
            f"{result.default_rows:,} trades wait in the DEFAULT partition for their month;\n"
            "`binprice db partitions --ensure` moves them to monthly partitions"
        )
    return "\n".join(lines)


def month_lines(months: Sequence[MonthStatus]) -> list[str]:
    """One line per month (status and `db info`): rows or compressed, trades, size, B/trade."""
    from binprice.cli.views.db import size_text

    return [
        f"{m.month:%Y-%m} {m.storage:<10} {m.trades:>13,} trades {size_text(m.bytes):>9}"
        + ("" if m.bytes_per_trade is None else f" {m.bytes_per_trade:7.1f} B/trade")
        for m in months
    ]


def _text_row(s: SymbolStatus) -> list[str]:
    return [
        s.symbol,
        _id(s.first_id),
        _time(s.first_at),
        _id(s.last_id),
        _time(s.last_at),
        str(s.trades),
        str(s.open_gaps),
        str(s.open_gap_ids),
        _id(_age_ms(s)),
    ]


def _age_ms(s: SymbolStatus) -> int | None:
    return None if s.last_trade_age is None else s.last_trade_age // _MILLISECOND


def _age(s: SymbolStatus) -> str:
    from binprice.cli.views.queries import format_ago

    return _NONE if s.last_trade_age is None else format_ago(s.last_trade_age)


def _id(value: int | None) -> str:
    return _NONE if value is None else str(value)


def _time(value: datetime | None) -> str:
    return _NONE if value is None else _json_time(value) or _NONE


def _json_time(value: datetime | None) -> str | None:
    from binprice.timespec import format_timestamp

    return None if value is None else format_timestamp(value)
