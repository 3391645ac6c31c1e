"""Where the exchange is, per market: the preset WebSocket and REST base URLs, the REST path
prefix, each endpoint's request weight and the connection limits (docs/futures.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from binprice.errors import ConfigError
from binprice.markets import Market

DEFAULT_WS_URL = "wss://stream.binance.com:9443"
DEFAULT_REST_URL = "https://api.binance.com"

#: Named endpoint pairs for `--exchange` on Spot: (WebSocket base, REST base).
PRESETS: dict[str, tuple[str, str]] = {
    "binance": (DEFAULT_WS_URL, DEFAULT_REST_URL),
    "binance-us": ("wss://stream.binance.us:9443", "https://api.binance.us"),
    "testnet": ("wss://stream.testnet.binance.vision", "https://testnet.binance.vision"),
    "data-stream": ("wss://data-stream.binance.vision", "https://data-api.binance.vision"),
}

#: The presets of each futures market. Binance.US has no futures, and the market-data-only
#: hosts (data-stream, data-api) serve Spot only.
FUTURES_PRESETS: dict[Market, dict[str, tuple[str, str]]] = {
    Market.USDM: {
        "binance": ("wss://fstream.binance.com", "https://fapi.binance.com"),
        "testnet": ("wss://fstream.binancefuture.com", "https://testnet.binancefuture.com"),
    },
    Market.COINM: {
        "binance": ("wss://dstream.binance.com", "https://dapi.binance.com"),
        "testnet": ("wss://dstream.binancefuture.com", "https://testnet.binancefuture.com"),
    },
}


@dataclass(frozen=True, slots=True)
class MarketApi:
    """What differs between the markets' public market-data APIs (docs/futures.md §2-§4)."""

    market: Market
    #: REST path prefix: `/api/v3`, `/fapi/v1`, `/dapi/v1`.
    prefix: str
    weight_trades: int
    weight_historical_trades: int
    weight_agg_trades: int
    weight_exchange_info: int
    #: REQUEST_WEIGHT per minute until an exchangeInfo answer declares its own.
    weight_limit: int
    #: Largest `limit` of `historicalTrades` (futures: 500 since 2025-01, Spot: 1000).
    historical_page_limit: int
    #: Largest `limit` of `trades` and `aggTrades`.
    page_limit: int
    #: `historicalTrades` is MARKET_DATA (an API key in `X-MBX-APIKEY`) on the futures
    #: markets; on Spot it is NONE since 2023-07-11.
    historical_needs_key: bool
    #: Control messages a client may send per second before the server closes the connection.
    messages_per_second: int
    streams_per_connection: int
    #: The server pings this often and closes a connection whose pong is this late (seconds).
    ping_interval: float
    pong_timeout: float
    #: The archive's folder on data.binance.vision: `data/<folder>/daily/trades/...`.
    archive_folder: str

    def path(self, endpoint: str) -> str:
        """`"historicalTrades"` → `"/fapi/v1/historicalTrades"`."""
        return f"{self.prefix}/{endpoint}"


_USDM = MarketApi(
    Market.USDM,
    "/fapi/v1",
    weight_trades=5,
    weight_historical_trades=20,
    weight_agg_trades=20,
    weight_exchange_info=1,
    weight_limit=2400,
    historical_page_limit=500,
    page_limit=1000,
    historical_needs_key=True,
    messages_per_second=10,
    streams_per_connection=1024,
    ping_interval=180.0,
    pong_timeout=600.0,
    archive_folder="futures/um",
)

APIS: dict[Market, MarketApi] = {
    Market.SPOT: MarketApi(
        Market.SPOT,
        "/api/v3",
        weight_trades=25,
        weight_historical_trades=25,
        weight_agg_trades=4,
        weight_exchange_info=20,
        weight_limit=6000,
        historical_page_limit=1000,
        page_limit=1000,
        historical_needs_key=False,
        messages_per_second=5,
        streams_per_connection=1024,
        ping_interval=20.0,
        pong_timeout=60.0,
        archive_folder="spot",
    ),
    Market.USDM: _USDM,
    # COIN-M's market-data API is USD-M's under another prefix (same weights and limits).
    Market.COINM: replace(
        _USDM, market=Market.COINM, prefix="/dapi/v1", archive_folder="futures/cm"
    ),
}


def market_api(market: Market) -> MarketApi:
    return APIS[market]


def presets(market: Market = Market.SPOT) -> dict[str, tuple[str, str]]:
    """The `--exchange` names a market has, with their (WebSocket, REST) bases."""
    return PRESETS if market is Market.SPOT else FUTURES_PRESETS[market]


def endpoints(
    exchange: str, ws_url: str | None, rest_url: str | None, market: Market = Market.SPOT
) -> tuple[str, str]:
    """The WebSocket and REST base URLs: explicit ones, else the `exchange` preset's."""
    named = presets(market)
    if exchange not in named:
        if exchange in PRESETS and ws_url is not None and rest_url is not None:
            # Both URLs given: the preset name is not used (a local test exchange).
            return ws_base(ws_url), rest_base(rest_url)
        raise ConfigError(
            f"unknown --exchange {exchange!r} for {market.label}; choose one of {', '.join(named)}"
        )
    preset_ws, preset_rest = named[exchange]
    return ws_base(ws_url or preset_ws), rest_base(rest_url or preset_rest)


def ws_base(url: str) -> str:
    """The WebSocket base URL without a trailing `/`, `/ws` or `/stream` the user may have typed."""
    url = url.strip().rstrip("/")
    for suffix in ("/stream", "/ws"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    if not url.startswith(("ws://", "wss://")):
        raise ConfigError(f"WebSocket URL must start with ws:// or wss://, got {url!r}")
    return url


def rest_base(url: str) -> str:
    """The REST base URL without a trailing `/` or an API path prefix (`/api`, `/fapi`, …)."""
    url = url.strip().rstrip("/")
    for suffix in ("/api", "/fapi", "/dapi"):
        url = url.removesuffix(suffix)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"REST URL must start with http:// or https://, got {url!r}")
    return url
