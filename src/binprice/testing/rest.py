"""REST side of the test exchange: ping, time, exchangeInfo, trades, historicalTrades, aggTrades,
under the market's prefix (``/api/v3``, ``/fapi/v1``, ``/dapi/v1``) with its weights and rules:
on the futures markets ``historicalTrades`` needs an API key (``X-MBX-APIKEY``), pages are 500
at most, and ``aggTrades`` takes at most an hour between ``startTime`` and ``endTime``.

Pages are cut from the generators' records, so REST serves exactly the trades that were
produced, including those a fault kept off the stream. Request weight is counted per fixed
minute window and reported in ``X-MBX-USED-WEIGHT-1M`` (and the older ``X-MBX-USED-WEIGHT``)
on every response. ``X-MBX-TIME-UNIT: MICROSECOND`` turns times into µs, as on Binance.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from aiohttp import web

from binprice.exchange.endpoints import MarketApi, market_api
from binprice.exchange.protocol import MICROSECOND_EPOCH_THRESHOLD
from binprice.markets import Market
from binprice.testing.exchange_info import (
    FILTERABLE_STATUSES,
    PERMISSIONS,
    futures_rate_limits,
    futures_symbol_entry,
    rate_limits,
    symbol_entry,
)
from binprice.testing.faults import Faults
from binprice.testing.generator import US_PER_MS, TradeGenerator
from binprice.testing.http import (
    Refused,
    WeightBudget,
    geo_blocked,
    json_response,
)
from binprice.testing.timeline import History

WEIGHT_PING = 1
WEIGHT_TIME = 1
_SPOT = market_api(Market.SPOT)
WEIGHT_TRADES = _SPOT.weight_trades
WEIGHT_HISTORICAL_TRADES = _SPOT.weight_historical_trades
WEIGHT_AGG_TRADES = _SPOT.weight_agg_trades
WEIGHT_EXCHANGE_INFO = _SPOT.weight_exchange_info
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
#: The futures markets' historicalTrades: default 100, at most 500 (since 2025-01).
FUTURES_HISTORICAL_DEFAULT_LIMIT = 100
#: The futures markets' aggTrades: startTime and endTime less than an hour apart.
FUTURES_AGG_WINDOW_MS = 3_600_000
API_KEY_HEADER = "X-MBX-APIKEY"
#: What a Binance API key looks like (64 letters and digits; shorter ones are accepted here).
API_KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{1,128}$")
REST_SYMBOL = re.compile(r"^[A-Z0-9-_.]{1,20}$")
TIME_UNIT_HEADER = "X-MBX-TIME-UNIT"
#: Binance names the weight header by its window; the unsuffixed one is the older name,
#: still sent and still read by some clients.
WEIGHT_HEADERS = ("X-MBX-USED-WEIGHT", "X-MBX-USED-WEIGHT-1M")


class RestApi:
    """aiohttp handlers over a set of generators; see :meth:`routes`."""

    def __init__(
        self,
        generators: Mapping[str, TradeGenerator],
        statuses: Mapping[str, str],
        faults: Faults,
        weight_limit: int | None = None,
        *,
        market: Market = Market.SPOT,
    ) -> None:
        """``weight_limit`` defaults to the market's (Spot 6000, futures 2400)."""
        self._generators = generators
        self._statuses = statuses
        self._faults = faults
        self.market = market
        self.api: MarketApi = market_api(market)
        #: The market's history before the exchange started (testing/timeline.py): REST
        #: serves ids below the generators' first from it. None: those ids do not exist.
        self.history: History | None = None
        #: The keys the futures ``historicalTrades`` accepts (None: any well-formed one).
        self.api_keys: frozenset[str] | None = None
        self.budget = WeightBudget(limit=weight_limit or self.api.weight_limit)
        #: REST requests that reached the exchange, per path.
        self.requests: Counter[str] = Counter()
        #: API keys historicalTrades was sent with (tests check it reached the exchange).
        self.keys_seen: Counter[str] = Counter()

    def routes(self) -> list[web.RouteDef]:
        api, path = self.api, self.api.path
        return [
            web.get(path("ping"), self._guard(WEIGHT_PING, self._ping)),
            web.get(path("time"), self._guard(WEIGHT_TIME, self._time)),
            web.get(path("trades"), self._guard(api.weight_trades, self._trades)),
            web.get(
                path("historicalTrades"),
                self._guard(api.weight_historical_trades, self._historical),
            ),
            web.get(path("aggTrades"), self._guard(api.weight_agg_trades, self._agg_trades)),
            web.get(
                path("exchangeInfo"), self._guard(api.weight_exchange_info, self._exchange_info)
            ),
        ]

    def _guard(
        self, weight: int, handler: Callable[[web.Request], bytes | Any]
    ) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.Response:
            self.requests[request.path] += 1
            if self._faults.geo_block_rest:
                return geo_blocked()
            if self._faults.rest_503_next > 0:
                self._faults.rest_503_next -= 1
                return json_response(503, {"code": -1001, "msg": "Internal error; unable to "
                                           "process your request. Please try again."})  # fmt: skip
            try:
                self.budget.charge(weight, self._faults, time.time())
                response = json_response(200, handler(request))
            except Refused as refused:
                response = refused.response
            for name in WEIGHT_HEADERS:
                response.headers.setdefault(name, str(self.budget.used))
            response.headers["X-MBX-UUID"] = str(uuid.uuid4())
            return response

        return endpoint

    # --- parameters -----------------------------------------------------------------------

    def _generator(self, request: web.Request) -> TradeGenerator:
        symbol = request.query.get("symbol")
        if symbol is None:
            raise Refused(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        if not REST_SYMBOL.match(symbol):
            raise Refused(
                400,
                -1100,
                "Illegal characters found in parameter 'symbol'; "
                "legal range is '^[A-Z0-9-_.]{1,20}$'.",
            )
        generator = self._generators.get(symbol)
        if generator is None:
            raise Refused(400, -1121, "Invalid symbol.")
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
            raise Refused(400, -1100, msg) from None

    def _limit(
        self, request: web.Request, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT
    ) -> int:
        limit = self._int(request, "limit", default)
        assert limit is not None
        if not 1 <= limit <= most:
            raise Refused(400, -1130, "Data sent for parameter 'limit' is not valid.")
        return limit

    @staticmethod
    def _microseconds(request: web.Request) -> bool:
        return request.headers.get(TIME_UNIT_HEADER, "").upper() == "MICROSECOND"

    def _time_param(self, request: web.Request, name: str) -> tuple[int, int] | None:
        """A time parameter as (µs, its unit in µs): Binance takes ms or µs, told by size."""
        value = self._int(request, name)
        if value is None:
            return None
        if value >= MICROSECOND_EPOCH_THRESHOLD:
            return value, 1
        return value * US_PER_MS, US_PER_MS

    # --- endpoints ------------------------------------------------------------------------

    def _ping(self, request: web.Request) -> dict[str, Any]:
        return {}

    def _time(self, request: web.Request) -> dict[str, Any]:
        now_us = time.time_ns() // 1000
        return {"serverTime": now_us if self._microseconds(request) else now_us // US_PER_MS}

    def _trades(self, request: web.Request) -> bytes:
        generator, limit = self._generator(request), self._limit(request)
        return generator.rest_rows(
            len(generator) - limit, len(generator), microseconds=self._microseconds(request)
        )

    def _check_key(self, request: web.Request) -> None:
        """MARKET_DATA on the futures markets: an API key in ``X-MBX-APIKEY`` (no signature)."""
        if not self.api.historical_needs_key:
            return
        key = request.headers.get(API_KEY_HEADER, "")
        if not API_KEY_FORMAT.match(key):
            raise Refused(401, -2014, "API-key format invalid.")
        if self.api_keys is not None and key not in self.api_keys:
            raise Refused(401, -2015, "Invalid API-key, IP, or permissions for action.")
        self.keys_seen[key] += 1

    def _historical(self, request: web.Request) -> bytes:
        self._check_key(request)
        generator = self._generator(request)
        if self.market is Market.SPOT:
            limit = self._limit(request)
        else:
            limit = self._limit(
                request, FUTURES_HISTORICAL_DEFAULT_LIMIT, self.api.historical_page_limit
            )
        from_id = self._int(request, "fromId")
        # Without fromId Binance returns the newest trades; with it, ids >= fromId ascending.
        if self._faults.rest_empty_next > 0:
            self._faults.rest_empty_next -= 1
            return b"[]"
        micro = self._microseconds(request)
        if from_id is None:
            start = max(0, len(generator) - limit)
            return generator.rest_rows(start, start + limit, microseconds=micro)
        older: list[str] = []
        if from_id < generator.first_id and self.history is not None:
            # Before the exchange started: its market's history, as the archive has it.
            older = self.history.rows(
                generator.symbol, from_id, generator.first_id, limit, microseconds=micro
            )
            if len(older) == limit:
                return ("[" + ",".join(older) + "]").encode()
        # From the first id >= fromId the exchange has: ids it never had are skipped over, so
        # the page begins past them (the client's evidence of a hole), and is still full.
        start = max(0, from_id - generator.first_id)
        page = generator.rest_rows(start, start, microseconds=micro, limit=limit - len(older))
        if not older:
            return page
        rows = ",".join(older) + ("," + page[1:-1].decode() if len(page) > 2 else "")
        return ("[" + rows + "]").encode()

    def _agg_trades(self, request: web.Request) -> bytes:
        generator, limit = self._generator(request), self._limit(request)
        book = generator.aggregates
        from_id = self._int(request, "fromId")
        start, end = self._time_param(request, "startTime"), self._time_param(request, "endTime")
        if from_id is not None and (start is not None or end is not None):
            raise Refused(400, -1128, "Combination of optional parameters invalid.")
        if (
            self.market is not Market.SPOT
            and start is not None
            and end is not None
            and end[0] - start[0] >= FUTURES_AGG_WINDOW_MS * US_PER_MS
        ):
            raise Refused(400, -1127, "More than 1 hours between startTime and endTime.")
        # Aggregates start where their order starts, so the first trade at or after a time
        # opens an aggregate: trade positions translate to aggregate positions exactly.
        stop = len(book)
        if end is not None:
            end_us, unit = end  # inclusive: in ms it covers the whole millisecond
            stop = self._agg_at_trade(generator, generator.index_of_time_us(end_us + unit))
        if from_id is not None:
            first = book.index_of_id(from_id)
        elif start is not None:
            first = self._agg_at_trade(generator, generator.index_of_time_us(start[0]))
        else:
            first = stop - limit  # the newest, up to endTime if given
        micro = self._microseconds(request)
        if from_id is not None and from_id < book.first_id and self.history is not None:
            # Before the exchange started: the history's aggregates, one per trade.
            older = self.history.agg_rows(
                generator.symbol, from_id, book.first_id, limit, microseconds=micro
            )
            rows = older + generator.agg_row_list(0, min(stop, limit - len(older)), micro)
            return ("[" + ",".join(rows) + "]").encode()
        first = max(0, first)
        return generator.agg_rows(first, min(stop, first + limit), microseconds=micro)

    @staticmethod
    def _agg_at_trade(generator: TradeGenerator, index: int) -> int:
        return (
            generator.aggregates.of_trade(index)
            if index < len(generator)
            else len(generator.aggregates)
        )

    def _exchange_info(self, request: web.Request) -> dict[str, Any]:
        if self.market is not Market.SPOT:
            return self._futures_exchange_info()
        query = request.query
        names: list[str]
        if "symbolStatus" in query and ("symbol" in query or "symbols" in query):
            raise Refused(400, -1128, "Combination of optional parameters invalid.")
        if "symbol" in query:
            names = [self._generator(request).symbol]
        elif "symbols" in query:
            names = self._symbol_list(query["symbols"])
        else:
            names = list(self._generators)
        wanted_status = query.get("symbolStatus")
        if wanted_status is not None and wanted_status not in FILTERABLE_STATUSES:
            raise Refused(400, -1122, "Invalid symbolStatus.")
        if "permissions" in query and not set(self._list_param(query["permissions"])) & set(
            PERMISSIONS
        ):
            names = []  # every synthetic symbol is SPOT and MARGIN only
        show_sets = query.get("showPermissionSets", "true").lower() != "false"
        entries = [
            symbol_entry(self._generators[name], status, permission_sets=show_sets)
            for name in names
            if wanted_status in (None, status := self._statuses.get(name, "TRADING"))
        ]
        now_us = time.time_ns() // 1000
        return {
            "timezone": "UTC",
            "serverTime": now_us if self._microseconds(request) else now_us // US_PER_MS,
            "rateLimits": rate_limits(self.budget.limit),
            "exchangeFilters": [],
            "symbols": entries,
        }

    def _futures_exchange_info(self) -> dict[str, Any]:
        """The futures exchangeInfo takes no parameters: every contract, every status."""
        return {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            "futuresType": "U_MARGINED" if self.market is Market.USDM else "COIN_MARGINED",
            "rateLimits": futures_rate_limits(self.budget.limit),
            "exchangeFilters": [],
            "assets": [],
            "symbols": [
                futures_symbol_entry(generator, self._statuses.get(name, "TRADING"))
                for name, generator in self._generators.items()
            ],
        }

    @staticmethod
    def _list_param(text: str) -> list[str]:
        """``SPOT`` or ``["SPOT","MARGIN"]``: Binance's two forms of an array parameter."""
        if not text.startswith("["):
            return [text]
        try:
            return msgspec.json.decode(text, type=list[str])
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise Refused(400, -1100, "Illegal characters found in a parameter.") from None

    def _symbol_list(self, text: str) -> list[str]:
        try:
            names = msgspec.json.decode(text, type=list[str])
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise Refused(400, -1100, "Illegal characters found in parameter 'symbols'.") from None
        for name in names:
            if not REST_SYMBOL.match(name):
                raise Refused(400, -1100, "Illegal characters found in parameter 'symbols'.")
            if name not in self._generators:
                raise Refused(400, -1121, "Invalid symbol.")
        return names
