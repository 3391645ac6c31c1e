"""`binprice db …`: migrations, status, the embedded server, and the partitions of trades."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from binprice.cli._app import (
    DURATION_HELP,
    TEXT,
    DatabaseUrl,
    command_app,
    err,
    help_without_command,
    store_from,
)

if TYPE_CHECKING:
    from binprice import PruneResult


commands = command_app(name="db", invoke_without_command=True)
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before dropping.")]


@commands.callback()
def db_group(ctx: typer.Context) -> None:
    """Manage the database: migrations, status, the embedded server."""
    help_without_command(ctx)


@commands.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(metavar="[REV]", help="Target revision.")] = "head",
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    store = store_from(ctx, database_url)
    reached = store.upgrade(revision)
    err(f"database at {store.location} is at revision {reached or 'base'}")


@commands.command(
    "downgrade",
    # Relative targets start with a dash (`-1`): taken as the argument, not as an unknown option.
    context_settings={"ignore_unknown_options": True},
)
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[
        str,
        typer.Argument(
            metavar="REV",
            help="Target revision: an id, -N (N steps down), or `base` (removes all tables).",
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before downgrading to base.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate the database down to REVISION (`base` drops binprice's tables and data)."""
    from binprice.errors import UsageError

    if revision.startswith("-") and not revision[1:].isdigit():
        raise UsageError(f"no such option: {revision}")
    store = store_from(ctx, database_url)
    if revision == "base" and not yes:
        _confirm_base(store.location)
    reached = store.downgrade(revision)
    err(f"database at {store.location} is at revision {reached or 'base'}")


def _confirm_base(where: str) -> None:
    import sys

    from binprice.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError(
            "`db downgrade base` drops every binprice table and the trades in them; "
            "pass --yes to confirm (stdin is not a terminal to ask on)"
        )
    # A "no" is an answer, not an interrupt (which the funnel reports for Typer's Abort).
    if not typer.confirm(
        f"Drop every binprice table, and the trades in them, from the database at {where}?"
    ):
        err("nothing was dropped")
        raise typer.Exit(1)


@commands.command("current")
def db_current(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Print the database's current revision (`base` if it has no binprice schema)."""
    store = store_from(ctx, database_url)
    current = store.revision()
    suffix = " (head)" if current == store.head else f" (behind head {store.head})"
    typer.echo(f"{current or 'base'}{suffix}")


@commands.command("history")
def db_history(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """List the schema revisions, newest first, marking head and the database's current one."""
    for rev in store_from(ctx, database_url).schema_history():
        marks = [m for m, on in (("head", rev.is_head), ("current", rev.is_current)) if on]
        tag = f" ({', '.join(marks)})" if marks else ""
        typer.echo(f"{rev.down_revision or '<base>'} -> {rev.revision}{tag}: {rev.message}")


@commands.command("info")
def db_info(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Show where the database is, the masked URL, server version, revision and row count; for
    the embedded server also whether it runs (a stopped one is not started), its pid, socket
    and data directories and size."""
    from binprice.cli.views.db import embedded_rows

    info = store_from(ctx, database_url).info()
    rows = [("database", info.location), ("configured by", info.source)]
    if info.embedded is not None:
        rows += embedded_rows(info)
    if info.url is not None:
        trades = "-" if info.trades is None else f"{info.trades:,}"
        if not info.trades_exact:
            trades = f"~{trades} (estimate)"
        rows += [
            ("url", info.url),
            ("server", f"PostgreSQL {info.server_version}"),
            ("revision", f"{info.revision or 'base'} (head: {info.head})"),
            ("trades", trades),
        ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"{key:<{width}}  {value}")
    if info.months:
        from binprice.cli.views.status import month_lines

        typer.echo("months")
        for line in month_lines(info.months):
            typer.echo(f"  {line}")


@commands.command("start")
def db_start(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Start the embedded PostgreSQL server (commands start it by themselves when needed)."""
    from binprice.cli.views.db import server_notice

    err(server_notice(store_from(ctx, database_url).start_server()))


@commands.command("stop")
def db_stop(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Stop the embedded PostgreSQL server. It otherwise keeps running after binprice exits."""
    result = store_from(ctx, database_url).stop_server()
    if result.stopped:
        err("embedded PostgreSQL stopped")
    elif result.stale_pid is not None:
        err(
            "embedded PostgreSQL was not running; removed its stale postmaster.pid "
            f"(pid {result.stale_pid} is another process, left alone)"
        )
    else:
        err("embedded PostgreSQL was not running")


@commands.command("prune")
def db_prune(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            metavar=TEXT,
            help=f"Drop the months of trades that ended at least this long ago: {DURATION_HELP}",
        ),
    ],
    keep_rollup: Annotated[
        bool,
        typer.Option(
            "--keep-rollup",
            help="Keep the per-minute rollup of the dropped months (candles stay answerable).",
        ),
    ] = False,
    yes: Yes = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Drop whole months (partitions) of trades older than --older-than, and their rollup
    minutes unless --keep-rollup; record the cut so `gaps --verify` starts there."""
    from datetime import UTC, datetime

    from binprice.timespec import format_timestamp, parse_duration

    # One cut for the plan shown and the prune: time passing at the prompt changes nothing.
    cut = datetime.now(UTC) - parse_duration(older_than)
    with store_from(ctx, database_url) as store:
        plan = store.plan_prune(cut)
        if not plan.partitions and not plan.agg_trades:
            err(f"nothing to prune: no month of trades ended before {format_timestamp(cut)}")
            return
        if not yes:
            _confirm_prune(plan, keep_rollup)
        result = store.prune(cut, keep_rollup=keep_rollup)
    rollup = "rollup minutes kept" if result.rollup_kept else "their rollup minutes deleted"
    typer.echo(f"dropped {_prune_summary(result)}; {rollup}")


#: Partition names listed in a prune message; more are shown as a range.
_NAMES_SHOWN = 4


def _prune_summary(result: PruneResult) -> str:
    from binprice.cli.views.db import size_text
    from binprice.timespec import format_timestamp

    names = [p.name for p in result.partitions]
    shown = ", ".join(names) if len(names) <= _NAMES_SHOWN else f"{names[0]} … {names[-1]}"
    before = format_timestamp(result.pruned_before) if result.pruned_before else "?"
    count = len(names)
    where = "moved out of" if result.done else "waiting in"
    waiting = f" ({result.from_default:,} of them {where} the DEFAULT partition)"
    trades = f"{result.trades:,} trades{waiting if result.from_default else ''}"
    aggs = ""
    if result.agg_trades:
        aggs = f"; {result.agg_trades:,} aggregate trades before {format_timestamp(result.agg_cut)}"
    if not names:
        return aggs.removeprefix("; ")
    return (
        f"{count} partition{'s' if count != 1 else ''} of trades ({shown}): every trade before "
        f"{before}, {trades}, {size_text(result.bytes)}{aggs}"
    )


def _confirm_prune(plan: PruneResult, keep_rollup: bool) -> None:
    import sys

    from binprice.errors import UsageError

    rollup = "" if keep_rollup else " and their rollup minutes"
    if not sys.stdin.isatty():
        raise UsageError(
            f"`db prune` would drop {_prune_summary(plan)}{rollup}; pass --yes to confirm "
            "(stdin is not a terminal to ask on)"
        )
    # A "no" is an answer, not an interrupt (which the funnel reports for Typer's Abort).
    if not typer.confirm(f"Drop {_prune_summary(plan)}{rollup}?"):
        err("nothing was dropped")
        raise typer.Exit(1)


@commands.command("compress")
def db_compress(
    ctx: typer.Context,
    before: Annotated[
        str | None,
        typer.Option(
            metavar="MONTH",
            help="Only months that ended by then: YYYY-MM (the month's start) or a time "
            "(UTC if naive). Default: every closed month.",
        ),
    ] = None,
    settle: Annotated[
        str,
        typer.Option(
            metavar=TEXT,
            help=f"Leave months that closed less than this long ago (late backfills land "
            f"first): {DURATION_HELP}",
        ),
    ] = "3d",
    days_before: Annotated[
        str | None,
        typer.Option(
            metavar="DATE|DURATION",
            help="Also compress the UTC days before this day (a date or time, UTC if naive, or "
            "a duration before now, e.g. 1d) of months still holding rows, the live month "
            "included, one day at a time while ingest goes on.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (trades, estimated bytes) only.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Compress closed months of trades into blocks (about 6 bytes a trade instead of ~200),
    one transaction per month; rows written into a compressed month later are merged in."""
    import re

    from binprice.cli.views.db import compress_json, compress_lines

    if before is not None and re.fullmatch(r"\d{4}-\d{2}", before):
        before += "-01"
    store = store_from(ctx, database_url)
    result = store.compress(before, dry_run=dry_run, settle=settle, days_before=days_before)
    if as_json:
        typer.echo(compress_json(result))
        return
    for line in compress_lines(result):
        typer.echo(line)


@commands.command("partitions")
def db_partitions(
    ctx: typer.Context,
    ensure: Annotated[
        bool,
        typer.Option(
            "--ensure",
            help="First create this month's and the next months' partitions, and move any rows "
            "waiting in the DEFAULT partition to their month.",
        ),
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List the partitions of trades: months, estimated rows (as of the last ANALYZE), size."""
    from binprice.cli.views.db import partitions_text

    with store_from(ctx, database_url) as store:
        if ensure:
            for name in store.ensure_partitions():
                err(f"created {name}")
        found = store.partitions()
    typer.echo(partitions_text(found), nl=False)
