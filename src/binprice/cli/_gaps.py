"""`binprice gaps`: recorded gaps, the completeness check, and repair."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from binprice.cli._app import (
    DURATION_HELP,
    TIME_HELP,
    ApiKeyOption,
    DatabaseUrl,
    DurationMeta,
    Exchange,
    KindOption,
    MarketOption,
    RestUrl,
    Symbols,
    TimeMeta,
    command_app,
    err,
    market_from,
    store_from,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from binprice._store import Store

commands = command_app()

VERIFY_HELP = (
    "Check the stored ids for holes; exit 1 if a hole is not accounted for by a recorded open, "
    "hole or skipped gap."
)
AGAINST_EXCHANGE_HELP = (
    "With --verify: also ask the exchange for each symbol's newest id and check the ids past "
    "the last stored one."
)
REPAIR_HELP = (
    "Record every unaccounted hole (and missing tail) as an open gap and fetch it from REST now."
)
GAPS_JSON_HELP = (
    "JSON: an array with one object per recorded gap; with --verify one object (ok, window, per "
    "symbol its holes); with --repair one object with the repaired gaps."
)


@commands.command()
def gaps(
    ctx: typer.Context,
    symbols: Symbols = None,
    verify: Annotated[bool, typer.Option("--verify", help=VERIFY_HELP)] = False,
    against_exchange: Annotated[
        bool, typer.Option("--against-exchange", help=AGAINST_EXCHANGE_HELP)
    ] = False,
    repair: Annotated[bool, typer.Option("--repair", help=REPAIR_HELP)] = False,
    last: Annotated[
        str | None,
        typer.Option(
            metavar=DurationMeta, help=f"Check the window ending at --end: {DURATION_HELP}"
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            metavar=TimeMeta, help=f"Window start, inclusive (whole UTC minutes): {TIME_HELP}"
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option(metavar=TimeMeta, help="Window end, exclusive.")
    ] = None,
    rest_url: RestUrl = None,
    exchange: Exchange = "binance",
    as_json: Annotated[bool, typer.Option("--json", help=GAPS_JSON_HELP)] = False,
    market: MarketOption = None,
    kind: KindOption = "trades",
    api_key: ApiKeyOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List recorded gaps (missing trade ids) and their state: open, filled, hole, skipped.

    --verify checks the stored ids (by whole UTC minutes, from the per-minute rollup) against
    the recorded gaps; --against-exchange adds each symbol's tail up to the exchange's newest
    trade; --repair records and fetches whatever is unaccounted. --kind aggTrades does the same
    with the aggregate ids (fetched through aggTrades, no API key on any market).
    """
    from binprice.errors import UsageError

    symbols = symbols or []
    window = last or start or end
    chosen = market_from(market)
    if not (verify or repair):
        if window or against_exchange:
            raise UsageError("--last/--start/--end/--against-exchange go with --verify or --repair")
        with store_from(ctx, database_url) as store:
            _list(store, symbols, chosen, kind, as_json=as_json)
        return
    if verify and repair:
        raise UsageError("choose --verify or --repair (--repair verifies first)")
    window_start = window_end = None
    if window:
        from binprice.timespec import parse_window

        window_start, window_end = parse_window(last=last, start=start, end=end)
    asked = _Asked(symbols, window_start, window_end, exchange, rest_url, chosen, kind, api_key)
    with store_from(ctx, database_url) as store:
        if repair:
            _repair(store, asked, as_json)
        else:
            _verify(store, asked, against_exchange, as_json)


def _list(store: Store, symbols: Sequence[str], market: str, kind: str, *, as_json: bool) -> None:
    from binprice.cli.views.gaps import gaps_json, gaps_text, no_gaps

    found = store.gaps(symbols, market=market, kind=kind)
    if not found and not as_json:
        err(no_gaps(kind))
        return
    typer.echo(gaps_json(found) if as_json else gaps_text(found), nl=as_json)


@dataclass(frozen=True, slots=True)
class _Asked:
    """What --verify and --repair check: the symbols, the window, the exchange and market."""

    symbols: Sequence[str]
    start: datetime | None
    end: datetime | None
    exchange: str
    rest_url: str | None
    market: str
    #: Whose ids: trades or aggregate trades (`--kind`).
    kind: str
    api_key: str | None = field(repr=False)


def _verify(store: Store, asked: _Asked, against_exchange: bool, as_json: bool) -> None:
    from binprice.cli.views.gaps import verification_json, verification_text

    result = store.verify(
        asked.symbols,
        start=asked.start,
        end=asked.end,
        against_exchange=against_exchange,
        exchange=asked.exchange,
        rest_url=asked.rest_url if against_exchange else None,
        market=asked.market,
        kind=asked.kind,
        api_key=asked.api_key,
    )
    typer.echo(
        verification_json(result) if as_json else verification_text(result, asked.kind), nl=as_json
    )
    if not result.ok:
        raise typer.Exit(1)


def _repair(store: Store, asked: _Asked, as_json: bool) -> None:
    from binprice.cli.views.gaps import RepairView, repair_json, repair_text

    with RepairView(sys.stderr.isatty() and not as_json, asked.kind) as view:
        result = store.repair(
            asked.symbols,
            start=asked.start,
            end=asked.end,
            exchange=asked.exchange,
            rest_url=asked.rest_url,
            progress=view,
            market=asked.market,
            kind=asked.kind,
            api_key=asked.api_key,
        )
    text = repair_json(result) if as_json else repair_text(result, asked.kind)
    typer.echo(text, nl=as_json)
    if any(g.state == "open" for g in result.gaps):
        raise typer.Exit(1)
