"""Where the exchange is: the default and preset WebSocket and REST base URLs, normalised."""

from __future__ import annotations

from binprice.errors import ConfigError

DEFAULT_WS_URL = "wss://stream.binance.com:9443"
DEFAULT_REST_URL = "https://api.binance.com"

#: Named endpoint pairs for `--exchange`: (WebSocket base, REST base).
PRESETS: dict[str, tuple[str, str]] = {
    "binance": (DEFAULT_WS_URL, DEFAULT_REST_URL),
    "binance-us": ("wss://stream.binance.us:9443", "https://api.binance.us"),
    "testnet": ("wss://stream.testnet.binance.vision", "https://testnet.binance.vision"),
    "data-stream": ("wss://data-stream.binance.vision", "https://data-api.binance.vision"),
}


def endpoints(exchange: str, ws_url: str | None, rest_url: str | None) -> tuple[str, str]:
    """The WebSocket and REST base URLs: explicit ones, else the `exchange` preset's."""
    if exchange not in PRESETS:
        raise ConfigError(f"unknown --exchange {exchange!r}; choose one of {', '.join(PRESETS)}")
    preset_ws, preset_rest = PRESETS[exchange]
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
    """The REST base URL without a trailing `/` or `/api`."""
    url = url.strip().rstrip("/")
    url = url.removesuffix("/api")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"REST URL must start with http:// or https://, got {url!r}")
    return url
