"""The test exchange's command line: ``python -m binprice.testing.exchange``.

It prints one JSON line with ``ws_url`` and ``rest_url`` (and ``cert`` with TLS) once it
listens, and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from binprice.symbols import DEFAULT_SYMBOLS
from binprice.testing.connection import ConnectionLimits
from binprice.testing.exchange import TestExchange
from binprice.testing.exchange import __doc__ as EXCHANGE_DOC
from binprice.testing.faults import Faults
from binprice.testing.http import DEFAULT_WEIGHT_LIMIT
from binprice.testing.tls import TlsFiles


def parse_args(
    argv: Sequence[str] | None, prog: str = "python -m binprice.testing.exchange"
) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description=EXCHANGE_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9443, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", default="max", help="trades/s per symbol, or 'max' (default)")
    p.add_argument(
        "--rate-of",
        action="append",
        default=[],
        metavar="SYMBOL=RATE",
        help="paced trades/s of one symbol, overriding --rate (repeatable)",
    )
    p.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS), help="comma-separated")
    p.add_argument("--max-trades", type=int, help="per symbol, then the streams go quiet")
    p.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="SYMBOL=STATUS",
        help="exchangeInfo status, e.g. ETHUSDT=BREAK (no trades then)",
    )
    p.add_argument("--ping-interval", type=float, default=20.0)
    p.add_argument("--pong-timeout", type=float, default=60.0)
    p.add_argument("--weight-limit", type=int, default=DEFAULT_WEIGHT_LIMIT)
    tls = p.add_argument_group("TLS (wss:// and https://)")
    tls.add_argument(
        "--tls",
        action="store_true",
        help="serve TLS with a self-signed certificate; its path is printed",
    )
    tls.add_argument("--cert", type=Path, help="serve TLS with this PEM certificate ...")
    tls.add_argument("--key", type=Path, help="... and this PEM private key")
    faults = p.add_argument_group("faults")
    faults.add_argument("--close-after-frames", type=int)
    faults.add_argument("--skip-fraction", type=float, default=0.0)
    faults.add_argument("--duplicate-fraction", type=float, default=0.0)
    faults.add_argument("--malformed-fraction", type=float, default=0.0)
    faults.add_argument("--stall-after-frames", type=int)
    faults.add_argument("--stall-seconds", type=float)
    faults.add_argument("--shutdown-after-frames", type=int)
    faults.add_argument("--lifetime", type=float, help="seconds before a 1001 close")
    faults.add_argument("--geo-block", action="store_true", help="HTTP 451 on REST and upgrade")
    args = p.parse_args(argv)
    try:
        args.rates = {s.upper(): float(r) for s, r in (i.split("=", 1) for i in args.rate_of)}
    except ValueError:
        p.error(f"--rate-of takes SYMBOL=RATE, got {args.rate_of}")
    if (args.cert is None) != (args.key is None):
        p.error("--cert and --key go together")
    args.symbol_list = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    unlisted = sorted(set(args.rates) - set(args.symbol_list))
    if unlisted:
        p.error(f"--rate-of names symbols missing from --symbols: {', '.join(unlisted)}")
    return args


def exchange_from_args(args: argparse.Namespace) -> TestExchange:
    """Build the exchange the command line describes."""
    faults = Faults(
        close_after_frames=args.close_after_frames,
        skip_fraction=args.skip_fraction,
        duplicate_fraction=args.duplicate_fraction,
        malformed_fraction=args.malformed_fraction,
        stall_after_frames=args.stall_after_frames,
        stall_seconds=args.stall_seconds,
        shutdown_after_frames=args.shutdown_after_frames,
        lifetime_seconds=args.lifetime,
        geo_block_ws=args.geo_block,
        geo_block_rest=args.geo_block,
    )
    return TestExchange(
        args.symbol_list,
        seed=args.seed,
        rate=None if args.rate == "max" else float(args.rate),
        rates=args.rates,
        max_trades=args.max_trades,
        statuses=dict(item.split("=", 1) for item in args.status),
        host=args.host,
        port=args.port,
        limits=ConnectionLimits(ping_interval=args.ping_interval, pong_timeout=args.pong_timeout),
        weight_limit=args.weight_limit,
        faults=faults,
        tls=TlsFiles(args.cert, args.key) if args.cert is not None else args.tls,
    )


async def serve(exchange: TestExchange) -> None:
    """Run until SIGINT/SIGTERM, announcing the URLs as one JSON line on stdout."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with exchange:
        announcement = {"ws_url": exchange.ws_url, "rest_url": exchange.rest_url}
        if exchange.tls_files is not None:
            announcement["cert"] = str(exchange.tls_files.cert)
            print(
                f"TLS certificate (trust it in clients): {exchange.tls_files.cert}", file=sys.stderr
            )
        sys.stdout.write(msgspec.json.encode(announcement).decode() + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = parse_args(argv) if prog is None else parse_args(argv, prog)
    asyncio.run(serve(exchange_from_args(args)))
