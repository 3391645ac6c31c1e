"""How the `binprice db` commands (and `status`) print the database: sizes, the embedded server."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from binprice import CompressResult, DatabaseInfo, DayCompression, Partition
    from binprice.embedded import ServerInfo

_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB")


def size_text(size: int) -> str:
    """Bytes in the largest unit that keeps the number at least 1, one decimal."""
    exponent = 0
    while exponent < len(_SIZE_UNITS) - 1 and size >= 1024 ** (exponent + 1):
        exponent += 1
    return f"{size / 1024**exponent:.1f} {_SIZE_UNITS[exponent]}"


def embedded_rows(info: DatabaseInfo) -> list[tuple[str, str]]:
    """`db info`'s lines about the embedded server (found without starting it)."""
    status = info.embedded
    assert status is not None
    if status.pgdata is None:
        return [
            ("state", "not created yet (the first command that needs it creates and starts it)"),
            ("data dir", str(status.data_dir)),
        ]
    server = status.server
    if server is None:
        state = "stopped (`binprice db start` starts it; so does any command that needs it)"
    else:
        state = f"running, pid {server.pid}, as {status.owner} (`binprice db stop` stops it)"
    rows = [("state", state)]
    if server is not None:
        rows.append(("socket dir", str(server.socket_dir)))
    return [
        *rows,
        ("cluster", f"{status.pgdata} ({size_text(status.size_bytes)})"),
        ("data dir", str(status.data_dir)),
    ]


def server_notice(server: ServerInfo) -> str:
    """`db start`'s line: the server runs, keeps running, and how to stop it."""
    from binprice.embedded import running_notice

    return running_notice(server)


def partitions_text(found: Sequence[Partition]) -> str:
    """`db partitions`: one line per partition, bounds as UTC dates (months start at midnight),
    so the table fits 80 columns."""
    from binprice.cli.views.text import aligned

    rows = [("partition", "from", "to", "rows (est.)", "size")] + [
        (
            p.name,
            "DEFAULT" if p.start is None else _bound(p.start),
            "" if p.end is None else _bound(p.end),
            f"~{p.rows_estimate:,}",
            size_text(p.bytes),
        )
        for p in found
    ]
    return aligned(rows, right={3, 4})


def _bound(moment: datetime) -> str:
    """A partition bound: the date, or the whole time when it is not midnight UTC."""
    from datetime import UTC

    from binprice.timespec import format_timestamp

    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d") if utc.time() == utc.time().min else format_timestamp(utc)


def compress_lines(result: CompressResult) -> list[str]:
    """`db compress`'s lines: one per month, what was (or would be) done, trades, bytes."""
    from binprice.timespec import format_timestamp

    if not result.months and not result.days:
        where = f"no closed month before {format_timestamp(result.before)}"
        if result.days_before is not None:
            where += f" and no day of rows before {format_timestamp(result.days_before)}"
        return [f"nothing to compress: {where}"]
    lines = []
    for m in result.months:
        verb = {"compress": "compressed", "merge": "merged late rows of"}[m.action]
        if not result.done:
            verb = {"compress": "would compress", "merge": "would merge late rows of"}[m.action]
        size = f"~{size_text(m.bytes)} (estimate)" if not result.done else size_text(m.bytes)
        per = "" if m.bytes_per_trade is None else f", {m.bytes_per_trade:.1f} B/trade"
        took = f" in {m.seconds:.1f} s" if result.done else ""
        lines.append(
            f"{verb} {m.month:%Y-%m}: {m.trades:,} trades, rows {size_text(m.row_bytes)} -> "
            f"blocks {size}{per}{took}"
        )
    return lines + [_day_line(d, done=result.done) for d in result.days]


def _day_line(d: DayCompression, *, done: bool) -> str:
    """One day of a month still holding rows, compressed (or not yet: a plan)."""
    verb = {"compress": "compressed", "merge": "merged rows into"}[d.action]
    if not done:
        verb = {"compress": "would compress", "merge": "would merge rows into"}[d.action]
    size = size_text(d.bytes) if done else f"~{size_text(d.bytes)} (estimate)"
    per = "" if d.bytes_per_trade is None else f", {d.bytes_per_trade:.1f} B/trade"
    took = f" in {d.seconds:.1f} s" if done else ""
    retried = f" ({d.retries} retried after a conflict)" if d.retries else ""
    return f"{verb} day {d.day:%Y-%m-%d}: {d.trades:,} trades -> blocks {size}{per}{took}{retried}"


def compress_json(result: CompressResult) -> str:
    """`db compress --json`: one object, a month per entry, stable keys."""
    import json

    from binprice.timespec import format_timestamp

    return json.dumps(
        {
            "before": format_timestamp(result.before),
            "done": result.done,
            "trades": result.trades,
            "months": [
                {
                    "month": f"{m.month:%Y-%m}",
                    "action": m.action,
                    "trades": m.trades,
                    "row_bytes": m.row_bytes,
                    "bytes": m.bytes,
                    "estimated": not result.done,
                    "bytes_per_trade": m.bytes_per_trade,
                    "blocks": m.blocks,
                    "seconds": m.seconds,
                }
                for m in result.months
            ],
            "days_before": result.days_before and format_timestamp(result.days_before),
            "days": [
                {
                    "day": f"{d.day:%Y-%m-%d}",
                    "action": d.action,
                    "trades": d.trades,
                    "bytes": d.bytes,
                    "estimated": not result.done,
                    "bytes_per_trade": d.bytes_per_trade,
                    "blocks": d.blocks,
                    "seconds": d.seconds,
                    "retries": d.retries,
                }
                for d in result.days
            ],
        }
    )
