"""A Binance-Spot-compatible test exchange for binprice's tests and benchmarks.

``TestExchange`` serves trade streams and REST backfill from deterministic generators and keeps
a record of every trade it produced; ``Faults`` switches its misbehaviour on and off at runtime;
``ExchangeProcess`` runs it as a child process.
"""

from binprice.testing.connection import ConnectionLimits
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from binprice.testing.generator import TradeGenerator
from binprice.testing.process import ExchangeProcess

__all__ = ["ConnectionLimits", "ExchangeProcess", "Faults", "TestExchange", "TradeGenerator"]
