"""`binprice exchange` and `binprice archive`: the Binance-compatible test exchange and the test
archive (data.binance.vision) from an installed binprice, for the tests, benchmarks and a
newcomer's offline try.

Neither touches a database, so neither is a `Store` call: each hands its options to
`binprice.testing.cli`, which builds the server and serves until Ctrl+C; the one line that
announces the URLs is `views.exchange`'s. Both describe one market per seed
(`binprice.testing.timeline`): the archive's trades are the exchange's history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from binprice.cli._app import command_app

commands = command_app()

MARKET_HELP = "Which Binance market to imitate: spot, usdm (USD-M futures) or coinm (COIN-M)."

Market = Annotated[str, typer.Option(envvar="BINPRICE_MARKET", metavar="MARKET", help=MARKET_HELP)]
Host = Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")]
Seed = Annotated[
    int,
    typer.Option(
        metavar="N", help="The market's seed: the same seed is the same trades, ids and prices."
    ),
]
Symbols = Annotated[str, typer.Option(metavar="SYMBOLS", help="Comma-separated symbols to list.")]
Names = Annotated[list[str], typer.Option(metavar="NAME", help="File name (repeatable).")]


@commands.command()
def exchange(
    symbols: Symbols = "BTCUSDT,ETHUSDT",
    market: Market = "spot",
    host: Host = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port to listen on; 0 picks a free one.")
    ] = 9443,
    seed: Seed = 0,
    rate: Annotated[
        str,
        typer.Option(
            metavar="RATE",
            help="Trades per second per symbol, or 'max': as fast as the slowest reader reads.",
        ),
    ] = "10",
    rate_of: Annotated[
        list[str],
        typer.Option(
            metavar="SYMBOL=RATE", help="One symbol's trades per second, overriding --rate."
        ),
    ] = [],  # noqa: B006 - Typer's way to say "none given"
    max_trades: Annotated[
        int | None,
        typer.Option(metavar="N", help="Trades per symbol, after which its streams go quiet."),
    ] = None,
    status: Annotated[
        list[str],
        typer.Option(
            metavar="SYMBOL=STATUS",
            help="exchangeInfo status, e.g. ETHUSDT=BREAK (a symbol not TRADING trades nothing).",
        ),
    ] = [],  # noqa: B006
    history: Annotated[
        bool,
        typer.Option(
            help="Serve the market's history (the test archive's trades) through REST below the "
            "first live id."
        ),
    ] = True,
    ping_interval: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Seconds between server pings (default: the market's, 20 or 180).",
        ),
    ] = None,
    pong_timeout: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS", help="Seconds without a pong before a close (default: the market's)."
        ),
    ] = None,
    weight_limit: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="REST weight per minute (default: the market's, 6000 or 2400)."
        ),
    ] = None,
    tls: Annotated[
        bool,
        typer.Option(help="Serve wss:// and https:// with a new self-signed certificate."),
    ] = False,
    cert: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Serve TLS with this PEM certificate (with --key)."),
    ] = None,
    key: Annotated[
        Path | None, typer.Option(metavar="PATH", help="The PEM private key of --cert.")
    ] = None,
    close_after_frames: Annotated[
        int | None,
        typer.Option(metavar="N", help="Fault: drop every connection after N frames (1006)."),
    ] = None,
    skip_fraction: Annotated[
        float,
        typer.Option(
            metavar="SHARE", help="Fault: withhold this share of trades from the streams."
        ),
    ] = 0.0,
    duplicate_fraction: Annotated[
        float, typer.Option(metavar="SHARE", help="Fault: send this share of frames twice.")
    ] = 0.0,
    malformed_fraction: Annotated[
        float,
        typer.Option(
            metavar="SHARE", help="Fault: send a malformed frame after this share of frames."
        ),
    ] = 0.0,
    stall_after_frames: Annotated[
        int | None,
        typer.Option(metavar="N", help="Fault: go silent after N frames (the socket stays open)."),
    ] = None,
    stall_seconds: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Fault: how long a stall lasts (default: for ever)."),
    ] = None,
    shutdown_after_frames: Annotated[
        int | None,
        typer.Option(metavar="N", help="Fault: send serverShutdown after N frames, then close."),
    ] = None,
    lifetime: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS", help="Fault: close each connection (1001) after N seconds."
        ),
    ] = None,
    geo_block: Annotated[
        bool, typer.Option(help="Fault: answer HTTP 451 on REST and on the stream upgrade.")
    ] = False,
) -> None:
    """Run the Binance-compatible test exchange until Ctrl+C: trade and aggregate trade streams,
    REST backfill and faults, for Spot or a futures market. It prints one JSON line with its
    URLs; point `binprice ingest --ws-url ... --rest-url ...` at them."""
    from binprice.cli.views.exchange import announce
    from binprice.testing.cli import ExchangeOptions, Faults, market_of, run_exchange

    faults = Faults(
        close_after_frames=close_after_frames,
        skip_fraction=skip_fraction,
        duplicate_fraction=duplicate_fraction,
        malformed_fraction=malformed_fraction,
        stall_after_frames=stall_after_frames,
        stall_seconds=stall_seconds,
        shutdown_after_frames=shutdown_after_frames,
        lifetime_seconds=lifetime,
        geo_block_ws=geo_block,
        geo_block_rest=geo_block,
    )
    options = ExchangeOptions(
        symbols,
        market=market_of(market),
        host=host,
        port=port,
        seed=seed,
        rate=rate,
        rate_of=rate_of,
        max_trades=max_trades,
        status=status,
        ping_interval=ping_interval,
        pong_timeout=pong_timeout,
        weight_limit=weight_limit,
        history=history,
        tls=tls,
        cert=cert,
        key=key,
        faults=faults,
    )
    run_exchange(options, announce)


@commands.command()
def archive(
    symbols: Symbols = "BTCUSDT",
    market: Market = "spot",
    host: Host = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port to listen on; 0 picks a free one.")
    ] = 8080,
    start: Annotated[
        str, typer.Option(metavar="DATE", help="First day served (YYYY-MM-DD, UTC).")
    ] = "2024-12-01",
    end: Annotated[
        str, typer.Option(metavar="DATE", help="First day not served (exclusive).")
    ] = "2025-02-01",
    seed: Seed = 0,
    trades_per_day: Annotated[
        int,
        typer.Option(
            metavar="N", help="Trades a day (the exchange's history has 1000: keep it to agree)."
        ),
    ] = 1000,
    rest: Annotated[
        bool, typer.Option(help="Also answer the exchange's REST API from the same trades.")
    ] = False,
    directory: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="Serve this directory tree instead of a generated market."
        ),
    ] = None,
    unpublished_from: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="First day not published yet (default: today; Binance publishes a day later).",
        ),
    ] = None,
    wrong_checksum: Names = [],  # noqa: B006
    truncated: Names = [],  # noqa: B006
    corrupt: Names = [],  # noqa: B006
    missing: Names = [],  # noqa: B006
    stalled: Names = [],  # noqa: B006
) -> None:
    """Run the test archive until Ctrl+C: daily and monthly trades and aggTrades zips with their
    CHECKSUM files in data.binance.vision's layout (data/spot/..., data/futures/um|cm/...),
    the same trades as the test exchange of the same seed. It prints one JSON line with its URL;
    point `binprice import --archive-url` at it. Faults (--wrong-checksum NAME ...) are by file
    name."""
    from binprice.cli.views.exchange import announce
    from binprice.testing.cli import ArchiveOptions, market_of, parse_day, run_archive

    options = ArchiveOptions(
        symbols,
        market=market_of(market),
        host=host,
        port=port,
        directory=directory,
        start=parse_day(start, "--start"),
        end=parse_day(end, "--end"),
        seed=seed,
        trades_per_day=trades_per_day,
        rest=rest,
        wrong_checksum=wrong_checksum,
        truncated=truncated,
        corrupt=corrupt,
        missing=missing,
        stalled=stalled,
        unpublished_from=(
            None if unpublished_from is None else parse_day(unpublished_from, "--unpublished-from")
        ),
    )
    run_archive(options, announce)


__all__ = ["archive", "commands", "exchange"]
