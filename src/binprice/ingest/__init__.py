"""Capture: stream readers → tracker → bounded buffer → COPY batch writer.

The names below are imported on first use, so importing one module of the pipeline (the buffer,
say) does not import the whole run with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from binprice._lazy import lazy_names

if TYPE_CHECKING:
    from binprice.events import EventKind as EventKind
    from binprice.events import IngestEvent as IngestEvent
    from binprice.events import Severity as Severity
    from binprice.exchange.endpoints import DEFAULT_REST_URL as DEFAULT_REST_URL
    from binprice.exchange.endpoints import DEFAULT_WS_URL as DEFAULT_WS_URL
    from binprice.exchange.stream import StreamPolicy as StreamPolicy
    from binprice.ingest.config import IngestConfig as IngestConfig
    from binprice.ingest.pipeline import run_ingest as run_ingest
    from binprice.ingest.recorder import Recorder as Recorder
    from binprice.ingest.recorder import RunSnapshot as RunSnapshot
    from binprice.ingest.stats import IngestStats as IngestStats
    from binprice.ingest.stats import IngestSummary as IngestSummary
    from binprice.ingest.stats import SymbolStats as SymbolStats
    from binprice.symbols import DEFAULT_SYMBOLS as DEFAULT_SYMBOLS

#: Where each name lives.
_WHERE = {
    "DEFAULT_REST_URL": "binprice.exchange.endpoints",
    "DEFAULT_WS_URL": "binprice.exchange.endpoints",
    "DEFAULT_SYMBOLS": "binprice.symbols",
    "StreamPolicy": "binprice.exchange.stream",
    "IngestConfig": "binprice.ingest.config",
    "EventKind": "binprice.events",
    "IngestEvent": "binprice.events",
    "Severity": "binprice.events",
    "run_ingest": "binprice.ingest.pipeline",
    "Recorder": "binprice.ingest.recorder",
    "RunSnapshot": "binprice.ingest.recorder",
    "IngestStats": "binprice.ingest.stats",
    "IngestSummary": "binprice.ingest.stats",
    "SymbolStats": "binprice.ingest.stats",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_names(__name__, _WHERE)
