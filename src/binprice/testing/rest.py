"""REST side of the test exchange: trades, historicalTrades, aggTrades, exchangeInfo.

Pages are cut from the generators' records, so REST serves exactly the trades that were
produced, including those a fault kept off the stream. Request weight is counted per fixed
minute window like Binance's ``X-MBX-USED-WEIGHT-1M``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from binprice.testing.faults import Faults
from binprice.testing.generator import TradeGenerator, format_units

WEIGHT_TRADES = 25
WEIGHT_HISTORICAL_TRADES = 25
WEIGHT_AGG_TRADES = 4
WEIGHT_EXCHANGE_INFO = 20
DEFAULT_WEIGHT_LIMIT = 6000
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
WINDOW_SECONDS = 60
REST_SYMBOL = re.compile(r"^[A-Z0-9-_.]{1,20}$")
_QUOTES = ("USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
_JSON = "application/json;charset=UTF-8"
GEO_BLOCK_MSG = (
    "Service unavailable from a restricted location according to 'b. Eligibility' in "
    "https://www.binance.com/en/terms. Please contact customer service if you believe you "
    "received this message in error."
)


def json_response(
    status: int, body: bytes | Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response with Binance's content type; ``body`` is bytes or encodable."""
    data = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return web.Response(
        status=status, body=data, headers={"Content-Type": _JSON, **(headers or {})}
    )


def geo_blocked() -> web.Response:
    return json_response(451, {"code": 0, "msg": GEO_BLOCK_MSG})


class _Refused(Exception):
    """Raised inside a handler to answer with a Binance error body."""

    def __init__(self, status: int, code: int, msg: str, headers: Mapping[str, str] | None = None):
        super().__init__(msg)
        self.response = json_response(status, {"code": code, "msg": msg}, headers)


@dataclass(slots=True)
class WeightBudget:
    """Fixed-window request weight per minute, with the 429 → 418 escalation."""

    limit: int = DEFAULT_WEIGHT_LIMIT
    window: int = 0
    used: int = 0
    limited_until: float = 0.0
    banned_until: float = 0.0

    def charge(self, weight: int, faults: Faults, now: float) -> None:
        """Count ``weight``; raise :class:`_Refused` (418/429) when Binance would."""
        if faults.rest_418_next > 0:
            faults.rest_418_next -= 1
            self.banned_until = max(self.banned_until, now + faults.retry_after_seconds)
        if now < self.banned_until:
            self._ban(now)
        if now < self.limited_until and faults.ban_after_429:
            self.banned_until = now + faults.retry_after_seconds
            self._ban(now)
        if faults.rest_429_next > 0:
            faults.rest_429_next -= 1
            self.limited_until = now + faults.retry_after_seconds
            self._limited(faults.retry_after_seconds)
        window = int(now // WINDOW_SECONDS)
        if window != self.window:
            self.window, self.used = window, 0
        self.used += weight
        if self.used > self.limit:
            window_end = (window + 1) * WINDOW_SECONDS
            self.limited_until = window_end
            self._limited(math.ceil(window_end - now))

    def _limited(self, retry_after: int) -> None:
        raise _Refused(
            429,
            -1003,
            f"Too much request weight used; current limit is {self.limit} request weight per "
            "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            {"Retry-After": str(retry_after), "X-MBX-USED-WEIGHT-1M": str(self.used)},
        )

    def _ban(self, now: float) -> None:
        until_ms = int((time.time() + self.banned_until - now) * 1000)
        raise _Refused(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            {"Retry-After": str(math.ceil(self.banned_until - now))},
        )


class RestApi:
    """aiohttp handlers over a set of generators; see :meth:`routes`."""

    def __init__(
        self,
        generators: Mapping[str, TradeGenerator],
        statuses: Mapping[str, str],
        faults: Faults,
        weight_limit: int = DEFAULT_WEIGHT_LIMIT,
    ) -> None:
        self._generators = generators
        self._statuses = statuses
        self._faults = faults
        self.budget = WeightBudget(limit=weight_limit)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v3/trades", self._guard(WEIGHT_TRADES, self._trades)),
            web.get(
                "/api/v3/historicalTrades", self._guard(WEIGHT_HISTORICAL_TRADES, self._historical)
            ),
            web.get("/api/v3/aggTrades", self._guard(WEIGHT_AGG_TRADES, self._agg_trades)),
            web.get("/api/v3/exchangeInfo", self._guard(WEIGHT_EXCHANGE_INFO, self._exchange_info)),
        ]

    def _guard(
        self, weight: int, handler: Callable[[web.Request], bytes | Any]
    ) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.Response:
            if self._faults.geo_block_rest:
                return geo_blocked()
            try:
                self.budget.charge(weight, self._faults, time.time())
                body = handler(request)
            except _Refused as refused:
                refused.response.headers.setdefault("X-MBX-USED-WEIGHT-1M", str(self.budget.used))
                return refused.response
            return json_response(200, body, {"X-MBX-USED-WEIGHT-1M": str(self.budget.used)})

        return endpoint

    # --- parameters -----------------------------------------------------------------------

    def _generator(self, request: web.Request) -> TradeGenerator:
        symbol = request.query.get("symbol")
        if symbol is None:
            raise _Refused(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        if not REST_SYMBOL.match(symbol):
            raise _Refused(
                400,
                -1100,
                "Illegal characters found in parameter 'symbol'; "
                "legal range is '^[A-Z0-9-_.]{1,20}$'.",
            )
        generator = self._generators.get(symbol)
        if generator is None:
            raise _Refused(400, -1121, "Invalid symbol.")
        return generator

    @staticmethod
    def _int(request: web.Request, name: str, default: int | None = None) -> int | None:
        text = request.query.get(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            msg = (
                f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
            )
            raise _Refused(400, -1100, msg) from None

    def _limit(self, request: web.Request) -> int:
        limit = self._int(request, "limit", DEFAULT_LIMIT)
        assert limit is not None
        if not 1 <= limit <= MAX_LIMIT:
            raise _Refused(400, -1130, "Data sent for parameter 'limit' is not valid.")
        return limit

    # --- endpoints ------------------------------------------------------------------------

    def _trades(self, request: web.Request) -> bytes:
        generator, limit = self._generator(request), self._limit(request)
        return generator.rest_rows(len(generator) - limit, len(generator))

    def _historical(self, request: web.Request) -> bytes:
        generator, limit = self._generator(request), self._limit(request)
        from_id = self._int(request, "fromId")
        # Without fromId Binance returns the newest trades; with it, ids >= fromId ascending.
        start = len(generator) - limit if from_id is None else from_id - generator.first_id
        start = max(0, start)
        return generator.rest_rows(start, start + limit)

    def _agg_trades(self, request: web.Request) -> bytes:
        generator, limit = self._generator(request), self._limit(request)
        from_id = self._int(request, "fromId")
        start_time = self._int(request, "startTime")
        end_time = self._int(request, "endTime")
        if from_id is not None and (start_time is not None or end_time is not None):
            raise _Refused(400, -1128, "Combination of optional parameters invalid.")
        if from_id is not None:
            start = from_id - generator.first_id
        elif start_time is not None:
            start = generator.index_of_time(start_time)
        else:
            start = max(0, len(generator) - limit)
        stop = None if end_time is None else generator.index_of_time(end_time + 1)
        return generator.agg_rows(start, limit, stop)

    def _exchange_info(self, request: web.Request) -> dict[str, Any]:
        names: list[str]
        if "symbol" in request.query:
            names = [self._generator(request).symbol]
        elif "symbols" in request.query:
            try:
                names = msgspec.json.decode(request.query["symbols"], type=list[str])
            except msgspec.DecodeError:
                raise _Refused(
                    400, -1100, "Illegal characters found in parameter 'symbols'."
                ) from None
            for name in names:
                if not REST_SYMBOL.match(name):
                    raise _Refused(400, -1100, "Illegal characters found in parameter 'symbols'.")
                if name not in self._generators:
                    raise _Refused(400, -1121, "Invalid symbol.")
        else:
            names = list(self._generators)
        return {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.budget.limit,
                },
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_entry(self._generators[name]) for name in names],
        }

    def _symbol_entry(self, generator: TradeGenerator) -> dict[str, Any]:
        symbol = generator.symbol
        quote = next((q for q in _QUOTES if symbol.endswith(q) and symbol != q), symbol[-4:])
        return {
            "symbol": symbol,
            "status": self._statuses.get(symbol, "TRADING"),
            "baseAsset": symbol[: -len(quote)],
            "quoteAsset": quote,
            "isSpotTradingAllowed": True,
            "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": format_units(generator.spec.tick)},
                {"filterType": "LOT_SIZE", "stepSize": format_units(generator.spec.step)},
            ],
        }
