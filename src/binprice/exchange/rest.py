"""Binance REST: symbol validation (`exchangeInfo`), backfill pages (`historicalTrades`) and
aggregate trades (`aggTrades`), on Spot (`/api/v3`), USD-M (`/fapi/v1`) or COIN-M (`/dapi/v1`).

The futures markets' `historicalTrades` needs an API key (MARKET_DATA, docs/futures.md §4): the
client sends it in `X-MBX-APIKEY` when it has one, and never shows it (its repr masks it).

Rate limits are per IP and shared with everything else the user runs, so the client reads
`X-MBX-USED-WEIGHT-1M` from every answer and pauses before the budget runs out, and honours
`Retry-After` on 429/418 (continuing after a 429 gets the IP banned, and Binance escalates
repeated bans from 2 minutes to 3 days). The Retry-After is kept as a "not before" time of the
weight pool, which every request of the client waits for, whoever sends it: the retry that got
the answer, the backfill, the reconciler, and the stop's last fetches (which look at
`blocked_for()` and leave their gaps recorded instead of waiting). HTTP 451 is permanent
(restricted location): it is raised at once, never retried.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from binprice.errors import (
    ExchangeBannedError,
    ExchangeError,
    ExchangeUnavailableError,
    GeoRestrictedError,
    SymbolError,
)
from binprice.exchange.bans import BanBook, Refusal
from binprice.exchange.endpoints import MarketApi, market_api
from binprice.exchange.protocol import (
    SymbolInfo,
    WireAggTrade,
    WireTrade,
    decode_newest_agg_trade_id,
    decode_rest_agg_trades,
    decode_rest_trades,
    parse_exchange_info,
    parse_weight_limit,
)
from binprice.exchange.retry import RateLimited, Sleep, Transient, rest_retrying
from binprice.markets import Market

_SPOT = market_api(Market.SPOT)
#: Spot's values; a client reads its market's from `RestClient.api`.
WEIGHT_LIMIT_PER_MINUTE = _SPOT.weight_limit
#: Stop spending at this share of the budget: other tools on the same IP need some too.
WEIGHT_SAFETY = 0.8
WEIGHT_TRADES = _SPOT.weight_historical_trades
#: `aggTrades`: how binprice learns a symbol's newest trade id (its `l`) at a sixth of the weight.
WEIGHT_AGG_TRADES = _SPOT.weight_agg_trades
WEIGHT_EXCHANGE_INFO = _SPOT.weight_exchange_info
PAGE_LIMIT = _SPOT.historical_page_limit
RETRY_AFTER_DEFAULT_SECONDS = 60
REQUEST_TIMEOUT_SECONDS = 15
#: Attempts for requests whose failure should surface quickly (start-up validation).
QUICK_ATTEMPTS = 3
#: How long a one-off command (`gaps --repair`, `import --rest-tail`) waits for a refusal to
#: end: a 429's short Retry-After is waited out, a ban (2 minutes and up) is reported at once.
ONE_OFF_BAN_WAIT_SECONDS = 30.0
#: Binance's REQUEST_WEIGHT pool: every endpoint binprice calls draws on it (a 429 or a 418
#: answer stops them all; a 418 bans the IP from everything anyway).
REQUEST_WEIGHT = "REQUEST_WEIGHT"

API_KEY_HEADER = "X-MBX-APIKEY"
#: Binance's codes for a missing or refused API key (errors.md: -2014, -2015).
API_KEY_CODES = (-2014, -2015)
API_KEY_HINT = (
    "{market}'s historicalTrades needs an API key (any key with read permission, no secret): "
    "set BINPRICE_API_KEY; without one only the newest trades (trades) and aggregate trades "
    "(aggTrades) can be fetched"
)

GEO_HINT = (
    "the exchange refuses this location (HTTP 451); use the Binance.US preset "
    "(--exchange binance-us) or run from another location"
)


class RestClient:
    """A small Binance REST client on an aiohttp session owned by the caller."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        sleep: Sleep = asyncio.sleep,  # what retries and the weight budget wait with
        clock: Callable[[], float] = time.time,
        bans: BanBook | None = None,
        max_ban_wait: float | None = None,
        market: Market = Market.SPOT,
        api_key: str | None = None,
    ) -> None:
        """`bans` shares refusals with the other binprice processes of a data directory;
        `max_ban_wait` (seconds; None: no limit) is the longest a request waits for a refusal
        to end before ExchangeBannedError is raised instead (one-off commands). `market`
        picks the paths, weights and page sizes; `api_key` goes in `X-MBX-APIKEY` (futures'
        `historicalTrades` needs one)."""
        self._session = session
        self._base = base_url
        self.market = market
        self.api: MarketApi = market_api(market)
        self._api_key = api_key or None
        #: Rows per `historicalTrades` page: a shorter page is the newest one.
        self.page_limit = self.api.historical_page_limit
        self._host = urlsplit(base_url).netloc
        self._sleep = sleep
        self._clock = clock
        self._bans = bans
        self._max_ban_wait = max_ban_wait
        #: The exchange's count of this minute's weight (X-MBX-USED-WEIGHT-1M), as last seen.
        self.used_weight = 0
        #: The weight the exchange allows per minute: the market's, until an exchangeInfo
        #: answer declares its own (Binance.US: 1200).
        self.weight_limit = self.api.weight_limit
        self._weight_minute = 0
        self.rate_limited = 0
        #: Weight of every request sent (each attempt counts), since the client was made.
        self.weight_spent = 0
        self.requests = 0
        #: Weight of the requests sent and not yet answered.
        self._in_flight = 0
        #: Per weight pool, the refusal (429/418 Retry-After) this client saw last: the clock
        #: time before which no request may be sent, and the HTTP status that set it.
        self._refusals: dict[str, Refusal] = {}

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"RestClient({self._base!r}, market={self.market.value}, api_key={key})"

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def refusal(self, pool: str = REQUEST_WEIGHT) -> Refusal | None:
        """The refusal of `pool` that ends last, this client's own or another process's."""
        own = self._refusals.get(pool)
        shared = self._bans.get(self._host, pool) if self._bans is not None else None
        if own is None or (shared is not None and shared.until > own.until):
            return shared
        return own

    @property
    def refused_with(self) -> int | None:
        """The HTTP status of the refusal that holds requests back now (None: none)."""
        found = self.refusal()
        return found.status if found is not None and found.until > self._clock() else None

    def blocked_for(self, pool: str = REQUEST_WEIGHT) -> float:
        """Seconds until the exchange lets `pool` be used again (0: now)."""
        found = self.refusal(pool)
        return 0.0 if found is None else max(0.0, found.until - self._clock())

    def _block(self, pool: str, status: int, seconds: float) -> None:
        now = self._clock()
        refusal = Refusal(now + seconds, status)
        known = self._refusals.get(pool)
        if known is None or refusal.until > known.until:
            self._refusals[pool] = refusal
        if self._bans is not None:
            self._bans.record(self._host, pool, refusal, now)

    async def _not_blocked(self, pool: str) -> None:
        """Wait out the pool's Retry-After, if any (one wait: the clock may be a test's), or
        raise ExchangeBannedError when it ends later than this client may wait."""
        wait = self.blocked_for(pool)
        if wait <= 0:
            return
        if self._max_ban_wait is not None and wait > self._max_ban_wait:
            found = self.refusal(pool)
            assert found is not None
            raise ExchangeBannedError(found.until, found.status)
        await self._sleep(wait)

    async def _budget(self, weight: int) -> None:
        """Wait until `weight` more fits this minute's budget, counting the requests still in
        flight (their weight is not in the exchange's count yet), then reserve it."""
        limit = self.weight_limit * WEIGHT_SAFETY
        minute = int(self._clock() // 60)
        if minute != self._weight_minute:
            self._weight_minute, self.used_weight = minute, 0
        if self.used_weight + self._in_flight + weight > limit:
            await self._sleep(60 - self._clock() % 60 + 0.1)
            if self._weight_minute <= minute:  # the first to wake starts the new minute
                self._weight_minute, self.used_weight = minute + 1, 0
        self._in_flight += weight

    async def get(
        self, path: str, params: dict[str, str], weight: int, attempts: int, *, keyed: bool = False
    ) -> bytes:
        """GET `path`, at most `attempts` times: 429/418 after Retry-After, 5xx and network
        errors after a jittered exponential wait (see retry.py). `keyed` sends the API key."""
        url = self._base + path
        headers = {API_KEY_HEADER: self._api_key} if keyed and self._api_key else None
        try:
            async for attempt in rest_retrying(attempts, self._sleep):
                with attempt:
                    await self._not_blocked(REQUEST_WEIGHT)
                    await self._budget(weight)
                    self.weight_spent += weight
                    self.requests += 1
                    try:
                        return await self._get_once(url, params, headers)
                    except RateLimited as limited:
                        self._block(REQUEST_WEIGHT, limited.status, limited.retry_after)
                        if self._max_ban_wait is not None and (
                            limited.retry_after > self._max_ban_wait
                        ):
                            found = self.refusal(REQUEST_WEIGHT)
                            assert found is not None
                            raise ExchangeBannedError(found.until, found.status) from None
                        raise
                    finally:
                        self._in_flight -= weight
        except Transient as exc:
            raise ExchangeUnavailableError(
                f"cannot reach the exchange at {self._base}: {exc}"
            ) from None
        raise AssertionError("unreachable: the retry loop returns or raises")

    async def _get_once(
        self, url: str, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> bytes:
        try:
            async with self._session.get(
                url,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
            ) as resp:
                body = await resp.read()
                used = resp.headers.get("X-MBX-USED-WEIGHT-1M")
                if used is not None and used.isdigit():
                    self.used_weight = int(used)
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Transient(str(exc) or exc.__class__.__name__) from None
        if status == 200:
            return body
        if status in (429, 418):
            self.rate_limited += 1
            wait = _retry_after(retry_after)
            raise RateLimited(f"HTTP {status} (rate limited, retry after {wait:g} s)", wait, status)
        if status == 451:
            raise GeoRestrictedError(GEO_HINT)
        if status >= 500:
            raise Transient(f"HTTP {status}")
        raise _client_error(status, body, url, self.market)

    async def exchange_info(self, symbols: tuple[str, ...]) -> dict[str, SymbolInfo]:
        """exchangeInfo for `symbols`; unknown symbols raise SymbolError naming them."""
        param = json.dumps(list(symbols), separators=(",", ":"))
        try:
            body = await self._exchange_info_body({"symbols": param})
        except SymbolError:
            if len(symbols) == 1:
                raise SymbolError(_unknown_message(list(symbols))) from None
            # The batch answer does not say which symbol is unknown: ask one by one.
            unknown = []
            for symbol in symbols:
                try:
                    await self.exchange_info((symbol,))
                except SymbolError:
                    unknown.append(symbol)
            raise SymbolError(_unknown_message(unknown)) from None
        self._learn_limit(body)
        return parse_exchange_info(body)

    async def _exchange_info_body(self, params: dict[str, str]) -> bytes:
        if self.market is not Market.SPOT:
            params = {}  # fapi/dapi exchangeInfo has no parameters
        return await self.get(
            self.api.path("exchangeInfo"), params, self.api.weight_exchange_info, QUICK_ATTEMPTS
        )

    def _learn_limit(self, body: bytes) -> None:
        declared = parse_weight_limit(body)
        if declared is not None:
            self.weight_limit = declared

    async def validate_symbols(self, symbols: tuple[str, ...]) -> dict[str, SymbolInfo]:
        """Check every symbol exists and is TRADING; raise SymbolError otherwise."""
        infos: dict[str, SymbolInfo] = {}
        for start in range(0, len(symbols), 100):  # keep the URL short
            chunk = symbols[start : start + 100]
            infos.update(await self.exchange_info(chunk))
        unknown = [s for s in symbols if s not in infos]
        if unknown:
            raise SymbolError(_unknown_message(unknown))
        idle = [f"{s} ({infos[s].status})" for s in symbols if not infos[s].is_trading]
        if idle:
            raise SymbolError(
                f"not trading on the exchange: {', '.join(idle)}; it would produce no trades"
            )
        return infos

    async def trading_symbols(self, quotes: tuple[str, ...] = ()) -> list[str]:
        """Every symbol the exchange lists as TRADING (quoted in one of `quotes`, if given),
        alphabetically: one exchangeInfo request (weight 20), only TRADING entries asked for."""
        # The futures markets' exchangeInfo takes no filter: it always lists everything.
        body = await self._exchange_info_body(
            {"symbolStatus": "TRADING"} if self.market is Market.SPOT else {}
        )
        self._learn_limit(body)
        infos = parse_exchange_info(body)
        wanted = {q.upper() for q in quotes}
        return sorted(
            s.symbol
            for s in infos.values()
            if s.is_trading and (not wanted or s.quote_asset in wanted) and s.symbol.isascii()
        )

    async def historical_trades(self, symbol: str, from_id: int, attempts: int) -> list[WireTrade]:
        """Up to `page_limit` trades with id >= from_id, ascending (futures: with the API key;
        without one the exchange refuses and ExchangeError says what to do)."""
        body = await self.get(
            self.api.path("historicalTrades"),
            {"symbol": symbol, "fromId": str(from_id), "limit": str(self.page_limit)},
            self.api.weight_historical_trades,
            attempts,
            keyed=self.api.historical_needs_key,
        )
        return decode_rest_trades(symbol, body)

    async def recent_trades(self, symbol: str, attempts: int = QUICK_ATTEMPTS) -> list[WireTrade]:
        """The newest trades (up to 1000), ascending: what a futures market serves without a
        key."""
        body = await self.get(
            self.api.path("trades"),
            {"symbol": symbol, "limit": str(self.api.page_limit)},
            self.api.weight_trades,
            attempts,
        )
        return decode_rest_trades(symbol, body)

    async def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        attempts: int = QUICK_ATTEMPTS,
    ) -> list[WireAggTrade]:
        """Up to 1000 aggregate trades, ascending: from aggregate id `from_id`, or from
        `start_ms` (to `end_ms`), or the newest. Binance takes `fromId` or the times, not both
        (futures: both times within one hour)."""
        if from_id is not None and (start_ms is not None or end_ms is not None):
            raise ValueError("aggTrades takes fromId or startTime/endTime, not both")
        params = {"symbol": symbol, "limit": str(self.api.page_limit)}
        for name, value in (("fromId", from_id), ("startTime", start_ms), ("endTime", end_ms)):
            if value is not None:
                params[name] = str(value)
        body = await self.get(
            self.api.path("aggTrades"), params, self.api.weight_agg_trades, attempts
        )
        return decode_rest_agg_trades(symbol, body)

    async def newest_trade_id(self, symbol: str) -> int | None:
        """The exchange's newest trade id of `symbol` (None if it never traded): the last trade
        id `l` of its newest aggregate trade, which costs 4 weight instead of `trades`' 25 on
        Spot (on the futures markets `trades` is the cheaper, 5 against 20)."""
        if self.market is not Market.SPOT:
            newest = await self.get(
                self.api.path("trades"),
                {"symbol": symbol, "limit": "1"},
                self.api.weight_trades,
                QUICK_ATTEMPTS,
            )
            trades = decode_rest_trades(symbol, newest)
            return trades[-1].trade_id if trades else None
        body = await self.get(
            self.api.path("aggTrades"),
            {"symbol": symbol, "limit": "1"},
            self.api.weight_agg_trades,
            QUICK_ATTEMPTS,
        )
        return decode_newest_agg_trade_id(symbol, body)

    async def newest_agg_id(self, symbol: str) -> int | None:
        """The exchange's newest aggregate id of `symbol` (None if it never traded):
        `aggTrades?limit=1`, public on every market."""
        body = await self.get(
            self.api.path("aggTrades"),
            {"symbol": symbol, "limit": "1"},
            self.api.weight_agg_trades,
            QUICK_ATTEMPTS,
        )
        rows = decode_rest_agg_trades(symbol, body)
        return rows[-1].agg_id if rows else None


def _unknown_message(unknown: list[str]) -> str:
    names = ", ".join(unknown)
    return f"unknown symbol{'s' if len(unknown) > 1 else ''} on the exchange: {names}"


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else RETRY_AFTER_DEFAULT_SECONDS
    except ValueError:
        return RETRY_AFTER_DEFAULT_SECONDS


def _client_error(status: int, body: bytes, url: str, market: Market) -> ExchangeError:
    try:
        obj = json.loads(body)
        code, msg = obj.get("code"), obj.get("msg", "")
    except (ValueError, AttributeError):
        code, msg = None, body[:200].decode(errors="replace")
    if code == -1121:
        return SymbolError("unknown symbol on the exchange")
    if code in API_KEY_CODES:
        return ExchangeError(API_KEY_HINT.format(market=market.label))
    return ExchangeError(f"the exchange refused {url} with HTTP {status}: {msg} (code {code})")
