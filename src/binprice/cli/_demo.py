"""`binprice demo`: try binprice offline, in one step.

It starts the Binance-compatible test exchange (`binprice exchange`, in a child process on a
free port), captures from it for a while with `binprice ingest` (its live view and summary),
then answers `binprice latest` and says what to try next. No network is needed.

The demo's trades are a test market's, so they never go beside real ones: the demo runs on a
data directory of its own (`<data dir>/demo`, its own embedded server), which it stops at the
end; the next commands start it again when pointed there. Like `binprice exchange` it is not
one `Store` call: it chains the `ingest` and `latest` commands (each of which is), around the
test exchange.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from binprice.cli._app import app, command_app

commands = command_app()

DEMO_SYMBOLS = "BTCUSDT,ETHUSDT"


@commands.command()
def demo(
    duration: Annotated[
        str, typer.Option(metavar="DURATION", help="How long to capture, e.g. 20s or 2m.")
    ] = "20s",
    symbols: Annotated[
        str, typer.Option(metavar="SYMBOLS", help="Comma-separated symbols the test market lists.")
    ] = DEMO_SYMBOLS,
    rate: Annotated[
        str, typer.Option(metavar="RATE", help="Trades per second per symbol on the test market.")
    ] = "20",
    max_trades: Annotated[
        int | None,
        typer.Option(metavar="N", min=1, help="Stop sooner: after storing this many trades."),
    ] = None,
) -> None:
    """Try binprice offline: a local test exchange, a capture from it, and the first answers,
    in a demo data directory apart from your real data."""
    import binprice
    from binprice.cli.views.demo import closing_lines, opening_line
    from binprice.settings import DATA_DIR_VAR, default_data_dir
    from binprice.testing.process import LocalExchange

    demo_dir = default_data_dir() / "demo"
    names = [name.strip().upper() for name in symbols.split(",") if name.strip()]
    with LocalExchange(["--symbols", ",".join(names), "--rate", rate]) as exchange:
        typer.echo(opening_line(exchange.ws_url, names, rate, duration, demo_dir), err=True)
        os.environ[DATA_DIR_VAR] = str(demo_dir)  # this process's commands: the demo's data
        urls = ["--ws-url", exchange.ws_url, "--rest-url", exchange.rest_url]
        until = ["--duration", duration, *(["--max-trades", str(max_trades)] if max_trades else [])]
        code = app.main(["ingest", *names, *urls, *until], standalone_mode=False)
    try:
        if code == 0:
            code = app.main(["latest", *names], standalone_mode=False)
    finally:
        with binprice.connect(data_dir=demo_dir) as store:
            store.stop_server()
    if code == 0:
        typer.echo(closing_lines(demo_dir, names[0]), err=True)
    raise typer.Exit(code)
