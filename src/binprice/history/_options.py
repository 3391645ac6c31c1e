"""What an import is asked to do. Frozen and validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from binprice.errors import ConfigError, UsageError
from binprice.exchange.endpoints import DEFAULT_REST_URL, presets, rest_base
from binprice.history._archive import DEFAULT_ARCHIVE_URL
from binprice.history._load import COMMIT_ROWS
from binprice.history._zip import BLOCK_BYTES
from binprice.kinds import TradeKind, parse_kind
from binprice.markets import Market, parse_market
from binprice.symbols import normalize_symbols
from binprice.timespec import parse_duration

#: Files downloaded (or waiting, verified) ahead of the ones being loaded.
DOWNLOADS_AHEAD = 2
#: Files loaded at once, each by its own connection. One PostgreSQL backend storing one file is
#: the bottleneck (about 5 µs a trade against 2 µs of Python); a second one loading the next
#: file in parallel makes the import faster than a single bare COPY, and keeps PostgreSQL's
#: share of a busy machine's CPU while Python decodes.
LOADERS = 2
#: How long after a month ends `import` writes its trades compressed (`trade_blocks`) instead
#: of as rows: the delay of `ingest --compress-after`, so late backfills land as rows first.
COMPRESS_AFTER = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """One import run.

    From the archive service: `symbols` and `start` are required; `end` (exclusive) defaults
    to today (UTC). From local files (`folders`, `files`): every file found is imported, or
    only those of `symbols` and of `start <= day < end` when given.
    """

    symbols: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    archive_url: str = DEFAULT_ARCHIVE_URL
    folders: tuple[Path, ...] = ()
    files: tuple[Path, ...] = ()
    #: Where downloads are spooled while they are verified and loaded (deleted once done).
    spool_dir: Path = field(default_factory=lambda: Path("downloads"))
    rest_url: str = DEFAULT_REST_URL
    #: The exchange's refusals shared with the other processes of the data directory
    #: (`exchange.bans`); None: this run's own only.
    bans_file: Path | None = None
    #: Fetch from REST what the archive lacks: days not published yet, holes in its files.
    rest_tail: bool = False
    downloads: int = DOWNLOADS_AHEAD
    loaders: int = LOADERS
    commit_rows: int = COMMIT_ROWS
    #: CSV bytes decoded at a time (a chunk is at least one block).
    block_bytes: int = BLOCK_BYTES
    #: "Today" (UTC): decides which days may not be published yet and which months are
    #: closed; None = the real today.
    today: date | None = None
    #: A month that ended at least this long before today is imported compressed (blocks);
    #: None (or 0, "0", "off"): every month as rows. A duration text ("3d") is parsed.
    compress_after: timedelta | str | None = COMPRESS_AFTER
    #: The archive's market: `data/spot/...`, `data/futures/um/...` or `.../cm/...`, its CSV
    #: dialect, and the `market` of every row, gap and `imports` row written (a name is taken).
    market: Market | str = Market.SPOT
    #: An API key for the futures' historicalTrades (`rest_tail`); never shown.
    api_key: str | None = field(default=None, repr=False)
    #: What the files hold: `trades` (into `trades`) or `aggTrades` (into `agg_trades`, their
    #: gaps of aggregate ids in `gaps` with kind 1); a name is taken (`binprice.kinds`).
    kind: TradeKind | str = TradeKind.TRADES

    def __post_init__(self) -> None:
        market = parse_market(self.market)
        object.__setattr__(self, "market", market)
        object.__setattr__(self, "kind", parse_kind(self.kind))
        if self.rest_tail and self.kind_of is TradeKind.AGG_TRADES:
            raise UsageError(
                "--rest-tail fetches trades; import aggregate trades without it (live "
                "`ingest --stream aggTrade` backfills their open gaps)"
            )
        if market.is_futures and self.rest_url == DEFAULT_REST_URL:
            object.__setattr__(self, "rest_url", presets(market)["binance"][1])
        object.__setattr__(self, "symbols", normalize_symbols(self.symbols))
        object.__setattr__(self, "archive_url", archive_base(self.archive_url))
        object.__setattr__(self, "rest_url", rest_base(self.rest_url))
        if not self.local:
            if not self.symbols:
                raise UsageError("name the symbols to import (or give --from DIR / zip files)")
            if self.start is None:
                raise UsageError("give --start DATE: the first UTC day to import")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise UsageError(f"--end {self.end} must be after --start {self.start}")
        if self.downloads < 1 or self.loaders < 1:
            raise ConfigError("downloads ahead and loaders must be at least 1")
        object.__setattr__(self, "compress_after", _delay(self.compress_after))
        if self.commit_rows < 1 or self.block_bytes < 1:
            raise ConfigError("rows per commit and bytes per block must be at least 1")

    @property
    def compress_delay(self) -> timedelta | None:
        """`compress_after` as parsed: None when every month is imported as rows (aggregate
        trades always: `agg_trades` has no compressed form)."""
        if self.kind_of is not TradeKind.TRADES:
            return None
        return self.compress_after if isinstance(self.compress_after, timedelta) else None

    @property
    def kind_of(self) -> TradeKind:
        """`kind` as parsed (a `TradeKind` after construction)."""
        return parse_kind(self.kind)

    @property
    def market_of(self) -> Market:
        """`market` as parsed (a `Market` after construction)."""
        return parse_market(self.market)

    @property
    def local(self) -> bool:
        return bool(self.folders or self.files)


def _delay(value: timedelta | str | None) -> timedelta | None:
    """`compress_after` as a duration; None for never (None, 0, "0", "off")."""
    if isinstance(value, str):
        if value.strip().lower() in ("off", "0"):
            return None
        value = parse_duration(value)
    if value is None or value <= timedelta(0):
        return None
    return value


def archive_base(url: str) -> str:
    """The archive's base URL without a trailing `/` or `/data`."""
    url = url.strip().rstrip("/").removesuffix("/data")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"archive URL must start with http:// or https://, got {url!r}")
    return url
