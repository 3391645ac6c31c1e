"""What `binprice demo` says around the capture: where the test market runs and where the
demo's data lives, then what to try next."""

from __future__ import annotations

import shlex
from pathlib import Path


def opening_line(ws_url: str, symbols: list[str], rate: str, duration: str, data: Path) -> str:
    return (
        f"demo: a local test exchange at {ws_url} ({', '.join(symbols)}, {rate} trades/s each); "
        f"capturing for {duration} into {data} (a data directory of its own, apart from your "
        "real data)"
    )


def closing_lines(data: Path, symbol: str) -> str:
    prefix = f"BINPRICE_DATA_DIR={shlex.quote(str(data))} binprice"
    return "\n".join(
        [
            "",
            "The demo's trades stay in its own data directory. Ask them more questions:",
            f"  {prefix} range {symbol} --last 1m",
            f"  {prefix} candles {symbol} 1m",
            f"  {prefix} gaps --verify",
            "Capture the real exchange (your default data directory): binprice ingest",
            "Start the test exchange yourself: binprice exchange --help",
        ]
    )
