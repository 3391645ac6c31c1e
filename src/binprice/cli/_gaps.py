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
KIND_HELP = (
    "Whose ids: trades (the default) or aggTrades, the aggregate ids `ingest --stream aggTrade` "
    "records (listed, --verify'd, --against-exchange; --repair is for trades)."
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
    kind: Annotated[str, typer.Option("--kind", metavar="KIND", help=KIND_HELP)] = "trades",
    api_key: ApiKeyOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List recorded gaps (missing trade ids) and their state: open, filled, hole, skipped.

    --verify checks the stored ids (by whole UTC minutes, from the per-minute rollup) against
    the recorded gaps; --against-exchange adds each symbol's tail up to the exchange's newest
    trade; --repair records and fetches whatever is unaccounted.
    """
    from binprice.errors import UsageError

    symbols = symbols or []
    window = last or start or end
    chosen = market_from(market)
    if kind != "trades":
        if repair:
            raise UsageError(
                "--repair fetches trades only so far; a running `binprice ingest --stream "
                "aggTrade` fetches the open gaps of aggregate ids"
            )
        aggregates = _Aggregates(symbols, chosen, kind, last, start, end, exchange, rest_url)
        _aggregates(ctx, database_url, aggregates, verify, against_exchange, as_json)
        return
    if not (verify or repair):
        if window or against_exchange:
            raise UsageError("--last/--start/--end/--against-exchange go with --verify or --repair")
        with store_from(ctx, database_url) as store:
            _list(store, symbols, chosen, as_json=as_json)
        return
    if verify and repair:
        raise UsageError("choose --verify or --repair (--repair verifies first)")
    window_start = window_end = None
    if window:
        from binprice.timespec import parse_window

        window_start, window_end = parse_window(last=last, start=start, end=end)
    asked = _Asked(symbols, window_start, window_end, exchange, rest_url, chosen, api_key)
    with store_from(ctx, database_url) as store:
        if repair:
            _repair(store, asked, as_json)
        else:
            _verify(store, asked, against_exchange, as_json)


@dataclass(frozen=True, slots=True)
class _Aggregates:
    """`gaps --kind aggTrades`: the symbols, market and window asked about."""

    symbols: Sequence[str]
    market: str
    kind: str
    last: str | None
    start: str | None
    end: str | None
    exchange: str
    rest_url: str | None


def _aggregates(
    ctx: typer.Context,
    database_url: str | None,
    asked: _Aggregates,
    verify: bool,
    against_exchange: bool,
    as_json: bool,
) -> None:
    """The gaps of aggregate ids (`ingest --stream aggTrade`), listed or verified, any market."""
    from binprice.cli.views.gaps import gaps_json, gaps_text, verification_json, verification_text
    from binprice.errors import UsageError

    window = asked.last or asked.start or asked.end
    if not verify:
        if window or against_exchange:
            raise UsageError("--last/--start/--end/--against-exchange go with --verify")
        with store_from(ctx, database_url) as store:
            found = store.gaps(asked.symbols, market=asked.market, kind=asked.kind)
        if not found and not as_json:
            err("no gaps of aggregate ids recorded (`--verify` checks the stored aggregate ids)")
            return
        typer.echo(gaps_json(found) if as_json else gaps_text(found), nl=as_json)
        return
    lo = hi = None
    if window:
        from binprice.timespec import parse_window

        lo, hi = parse_window(last=asked.last, start=asked.start, end=asked.end)
    with store_from(ctx, database_url) as store:
        result = store.verify(
            asked.symbols,
            start=lo,
            end=hi,
            against_exchange=against_exchange,
            exchange=asked.exchange,
            rest_url=asked.rest_url if against_exchange else None,
            market=asked.market,
            kind=asked.kind,
        )
    typer.echo(verification_json(result) if as_json else verification_text(result), nl=as_json)
    if not result.ok:
        raise typer.Exit(1)


def _list(store: Store, symbols: Sequence[str], market: str, *, as_json: bool) -> None:
    from binprice.cli.views.gaps import gaps_json, gaps_text

    found = store.gaps(symbols, market=market)
    if not found and not as_json:
        err("no gaps recorded (`binprice gaps --verify` checks the stored trade ids)")
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
        api_key=asked.api_key,
    )
    typer.echo(verification_json(result) if as_json else verification_text(result), nl=as_json)
    if not result.ok:
        raise typer.Exit(1)


def _repair(store: Store, asked: _Asked, as_json: bool) -> None:
    from binprice.cli.views.gaps import RepairView, repair_json, repair_text

    with RepairView(sys.stderr.isatty() and not as_json) as view:
        result = store.repair(
            asked.symbols,
            start=asked.start,
            end=asked.end,
            exchange=asked.exchange,
            rest_url=asked.rest_url,
            progress=view,
            market=asked.market,
            api_key=asked.api_key,
        )
    typer.echo(repair_json(result) if as_json else repair_text(result), nl=as_json)
    if any(g.state == "open" for g in result.gaps):
        raise typer.Exit(1)
