"""`binprice status`: coverage at a glance, per symbol and for the database (shown by
`views.status`)."""

from __future__ import annotations

import typer

from binprice.cli._app import (
    DatabaseUrl,
    Json,
    MarketOption,
    Symbols,
    command_app,
    market_from,
    store_from,
)

commands = command_app()


@commands.command()
def status(
    ctx: typer.Context,
    symbols: Symbols = None,
    as_json: Json = False,
    market: MarketOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """What is stored: per symbol the first and last trade (id and time), the count, open gaps
    and the last trade's age; the database's size and where history was pruned."""
    from binprice.cli.views.status import show

    with store_from(ctx, database_url) as store:
        result = store.status(tuple(symbols or ()), market=market_from(market))
    show(result, as_json=as_json)
