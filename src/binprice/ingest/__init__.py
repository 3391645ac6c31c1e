"""Capture: stream readers → tracker → bounded buffer → COPY batch writer."""

from binprice.exchange.endpoints import DEFAULT_REST_URL, DEFAULT_WS_URL
from binprice.exchange.stream import StreamPolicy
from binprice.ingest.config import IngestConfig
from binprice.ingest.events import EventKind, IngestEvent, Severity
from binprice.ingest.pipeline import run_ingest
from binprice.ingest.recorder import Recorder, RunSnapshot
from binprice.ingest.stats import IngestStats, IngestSummary, SymbolStats
from binprice.symbols import DEFAULT_SYMBOLS

__all__ = [
    "DEFAULT_REST_URL",
    "DEFAULT_SYMBOLS",
    "DEFAULT_WS_URL",
    "EventKind",
    "IngestConfig",
    "IngestEvent",
    "IngestStats",
    "IngestSummary",
    "Recorder",
    "RunSnapshot",
    "Severity",
    "StreamPolicy",
    "SymbolStats",
    "run_ingest",
]
