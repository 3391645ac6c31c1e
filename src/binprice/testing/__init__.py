"""A Binance-Spot-compatible test exchange for binprice's tests and benchmarks.

``TestExchange`` serves trade streams and REST backfill from deterministic generators and keeps
a record of every trade it produced; ``Faults`` switches its misbehaviour on and off at runtime;
``ExchangeProcess`` runs it as a child process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from binprice.testing.connection import ConnectionLimits
from binprice.testing.faults import Faults
from binprice.testing.generator import TradeGenerator

if TYPE_CHECKING:
    from binprice.testing.exchange import TestExchange
    from binprice.testing.process import ExchangeProcess

__all__ = ["ConnectionLimits", "ExchangeProcess", "Faults", "TestExchange", "TradeGenerator"]


def __getattr__(name: str) -> Any:
    # Lazy, so ``python -m binprice.testing.exchange`` does not find its own module already
    # imported by the package (runpy warns about that).
    if name == "TestExchange":
        from binprice.testing.exchange import TestExchange

        return TestExchange
    if name == "ExchangeProcess":
        from binprice.testing.process import ExchangeProcess

        return ExchangeProcess
    raise AttributeError(name)
