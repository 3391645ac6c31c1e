"""binprice: every Binance trade in PostgreSQL, provably, and the questions to ask of it.

    import binprice

    with binprice.connect() as store:          # the embedded server, as the CLI uses it
        store.latest(["BTCUSDT"])              # -> list[Latest]
        store.at("2026-05-28T04:13:41Z", "BTCUSDT")
        store.range("1h ago", "now", "BTCUSDT")
        store.candles("BTCUSDT", "1m", "1d ago")
        for trade in store.trades("BTCUSDT", "5m ago"):
            ...

`connect()` returns a `Store`; every answer is a list of the frozen dataclasses below (exact
`Decimal` prices, aware UTC datetimes), empty when nothing matched; every error raised on
purpose is a `BinpriceError`. The modules behind this map are internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from binprice._lazy import lazy_names
from binprice._version import __version__

if TYPE_CHECKING:
    from binprice._options import IngestOptions as IngestOptions
    from binprice._store import Store as Store
    from binprice._store import connect as connect
    from binprice.completeness.repair import RepairedGap as RepairedGap
    from binprice.completeness.repair import RepairProgress as RepairProgress
    from binprice.completeness.repair import RepairResult as RepairResult
    from binprice.db.aggtrades import AggAt as AggAt
    from binprice.db.aggtrades import AggTrade as AggTrade
    from binprice.db.candles import Candle as Candle
    from binprice.db.compress import CompressResult as CompressResult
    from binprice.db.compress import DayCompression as DayCompression
    from binprice.db.compress import MonthCompression as MonthCompression
    from binprice.db.gaps import Gap as Gap
    from binprice.db.gaps import Hole as Hole
    from binprice.db.gaps import SymbolCheck as SymbolCheck
    from binprice.db.gaps import Verification as Verification
    from binprice.db.info import DatabaseInfo as DatabaseInfo
    from binprice.db.partitions import Partition as Partition
    from binprice.db.partitions import PruneResult as PruneResult
    from binprice.db.queries import At as At
    from binprice.db.queries import Latest as Latest
    from binprice.db.queries import Range as Range
    from binprice.db.status import MonthStatus as MonthStatus
    from binprice.db.status import Status as Status
    from binprice.db.status import SymbolStatus as SymbolStatus
    from binprice.errors import AbortedError as AbortedError
    from binprice.errors import ArchiveError as ArchiveError
    from binprice.errors import ArchiveFileError as ArchiveFileError
    from binprice.errors import ArchiveUnavailableError as ArchiveUnavailableError
    from binprice.errors import BinpriceError as BinpriceError
    from binprice.errors import ConfigError as ConfigError
    from binprice.errors import DatabaseBusyError as DatabaseBusyError
    from binprice.errors import DatabaseError as DatabaseError
    from binprice.errors import DatabaseUnavailableError as DatabaseUnavailableError
    from binprice.errors import EmbeddedServerError as EmbeddedServerError
    from binprice.errors import ExchangeError as ExchangeError
    from binprice.errors import ExchangeUnavailableError as ExchangeUnavailableError
    from binprice.errors import ExportError as ExportError
    from binprice.errors import GeoRestrictedError as GeoRestrictedError
    from binprice.errors import ImportIncompleteError as ImportIncompleteError
    from binprice.errors import NotFoundError as NotFoundError
    from binprice.errors import SchemaOutdatedError as SchemaOutdatedError
    from binprice.errors import SymbolError as SymbolError
    from binprice.errors import UsageError as UsageError
    from binprice.events import EventKind as EventKind
    from binprice.events import IngestEvent as IngestEvent
    from binprice.events import Severity as Severity
    from binprice.export import Trade as Trade
    from binprice.history import FileProgress as FileProgress
    from binprice.history import ImportEvent as ImportEvent
    from binprice.history import ImportOptions as ImportOptions
    from binprice.history import ImportSummary as ImportSummary
    from binprice.ingest.stats import IngestSummary as IngestSummary
    from binprice.ingest.stats import SymbolStats as SymbolStats
    from binprice.trades import Trades as Trades

#: Where each public name lives; imported on first use, so `import binprice` stays instant
#: (the command line imports this package before every command).
_WHERE = {
    "connect": "binprice._store",
    "Store": "binprice._store",
    "IngestOptions": "binprice._options",
    "ImportOptions": "binprice.history",
    "ImportEvent": "binprice.history",
    "ImportSummary": "binprice.history",
    "FileProgress": "binprice.history",
    "RepairProgress": "binprice.completeness.repair",
    "Latest": "binprice.db.queries",
    "At": "binprice.db.queries",
    "Range": "binprice.db.queries",
    "Candle": "binprice.db.candles",
    "AggTrade": "binprice.db.aggtrades",
    "AggAt": "binprice.db.aggtrades",
    "Trade": "binprice.export",
    "Trades": "binprice.trades",
    "Gap": "binprice.db.gaps",
    "Hole": "binprice.db.gaps",
    "SymbolCheck": "binprice.db.gaps",
    "Verification": "binprice.db.gaps",
    "RepairResult": "binprice.completeness.repair",
    "RepairedGap": "binprice.completeness.repair",
    "DatabaseInfo": "binprice.db.info",
    "Status": "binprice.db.status",
    "MonthStatus": "binprice.db.status",
    "SymbolStatus": "binprice.db.status",
    "Partition": "binprice.db.partitions",
    "PruneResult": "binprice.db.partitions",
    "CompressResult": "binprice.db.compress",
    "DayCompression": "binprice.db.compress",
    "MonthCompression": "binprice.db.compress",
    "IngestSummary": "binprice.ingest.stats",
    "SymbolStats": "binprice.ingest.stats",
    "IngestEvent": "binprice.events",
    "EventKind": "binprice.events",
    "Severity": "binprice.events",
    **dict.fromkeys(
        (
            "BinpriceError",
            "ConfigError",
            "UsageError",
            "NotFoundError",
            "AbortedError",
            "DatabaseError",
            "DatabaseUnavailableError",
            "DatabaseBusyError",
            "SchemaOutdatedError",
            "EmbeddedServerError",
            "ExchangeError",
            "ExchangeUnavailableError",
            "SymbolError",
            "GeoRestrictedError",
            "ExportError",
            "ArchiveError",
            "ArchiveFileError",
            "ArchiveUnavailableError",
            "ImportIncompleteError",
        ),
        "binprice.errors",
    ),
}

__all__ = [
    "AbortedError",
    "AggAt",
    "AggTrade",
    "ArchiveError",
    "ArchiveFileError",
    "ArchiveUnavailableError",
    "At",
    "BinpriceError",
    "Candle",
    "CompressResult",
    "ConfigError",
    "DatabaseBusyError",
    "DatabaseError",
    "DatabaseInfo",
    "DatabaseUnavailableError",
    "DayCompression",
    "EmbeddedServerError",
    "EventKind",
    "ExchangeError",
    "ExchangeUnavailableError",
    "ExportError",
    "FileProgress",
    "Gap",
    "GeoRestrictedError",
    "Hole",
    "ImportEvent",
    "ImportIncompleteError",
    "ImportOptions",
    "ImportSummary",
    "IngestEvent",
    "IngestOptions",
    "IngestSummary",
    "Latest",
    "MonthCompression",
    "MonthStatus",
    "NotFoundError",
    "Partition",
    "PruneResult",
    "Range",
    "RepairProgress",
    "RepairResult",
    "RepairedGap",
    "SchemaOutdatedError",
    "Severity",
    "Status",
    "Store",
    "SymbolCheck",
    "SymbolError",
    "SymbolStats",
    "SymbolStatus",
    "Trade",
    "Trades",
    "UsageError",
    "Verification",
    "__version__",
    "connect",
]


__getattr__ = lazy_names(__name__, _WHERE)


def __dir__() -> list[str]:
    return sorted(__all__)
