"""`binprice exchange`: the Binance-compatible test exchange, from an installed binprice.

The options are the test exchange's own (`binprice exchange --help` lists them); they are
handed to `binprice.testing.cli` as they are, so the command and `python -m
binprice.testing.exchange` can never disagree.
"""

from __future__ import annotations

import typer

from binprice.cli._app import command_app

commands = command_app()


@commands.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
def exchange(ctx: typer.Context) -> None:
    """Run the Binance-compatible test exchange (streams, REST, faults) until Ctrl+C; it prints
    one JSON line with its URLs. Its options: `binprice exchange --help`."""
    from binprice.testing.cli import main

    main(list(ctx.args), prog="binprice exchange")
