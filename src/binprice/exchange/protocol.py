"""Pure Binance protocol code: stream names, frame decoding, REST row decoding, per market.

Nothing here does I/O. Spot and the futures markets share the frame shapes with small
differences (docs/futures.md): a futures ``@trade`` frame carries ``X`` (the trade's kind) and
no ``M``; aggregate trades (``@aggTrade``, REST ``aggTrades``) decode into
:class:`WireAggTrade`. The hot path is :func:`decode_frame` on a combined-stream ``@trade``
frame: one typed msgspec decode straight from bytes, then a handful of cheap checks. Anything
the fast path cannot turn into a :class:`WireTrade` is classified by a slower generic decode into
one of the :data:`Event` variants, so the reader never has to catch exceptions per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec

from binprice.errors import ExchangeError
from binprice.markets import Market
from binprice.symbols import MAX_STREAMS_PER_CONNECTION

#: A time field at or above this is a microsecond epoch (16 digits, ``timeUnit=MICROSECOND``).
#: Millisecond epochs stay below it until the year 5138, microsecond ones are above it since 1973.
MICROSECOND_EPOCH_THRESHOLD = 10**14
#: Suffix of the trade stream name: ``btcusdt@trade``.
TRADE_STREAM_SUFFIX = "@trade"
#: Suffix of the aggregate trade stream name: ``btcusdt@aggTrade``.
AGG_TRADE_STREAM_SUFFIX = "@aggTrade"
#: ``X`` of a futures trade filled in the order book: the only kind binprice stores, because it
#: is the only kind REST (``trades``, ``historicalTrades``, ``aggTrades``) and the archives
#: carry, so live capture, backfill and import agree (docs/futures.md §3).
MARKET_TRADE = "MARKET"
#: Stream name Binance puts on the combined ``serverShutdown`` event.
SERVER_SHUTDOWN_STREAM = "!serverShutdown"

_ZERO = Decimal(0)
_T = TypeVar("_T")


class WireTrade(msgspec.Struct, frozen=True, gc=False):
    """One Spot trade as the exchange sends it (a stream frame or a REST row), decoded.

    The stored trade a query returns is `binprice.Trade`; the table's model is
    `binprice.models.TradeRow`.

    ``time_ms`` is the trade time ``T`` (matching engine), UTC epoch milliseconds.
    ``is_buyer_maker`` true means the aggressor sold.
    """

    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    time_ms: int
    is_buyer_maker: bool


class WireAggTrade(msgspec.Struct, frozen=True, gc=False):
    """One aggregate trade (``@aggTrade`` frame or REST ``aggTrades`` row), decoded.

    ``agg_id`` is the aggregate id ``a``; ``first_trade_id``..``last_trade_id`` (``f``..``l``,
    inclusive) the trades merged into it; ``quantity`` their summed ``q``; ``time_ms`` is ``T``.
    """

    symbol: str
    agg_id: int
    price: Decimal
    quantity: Decimal
    first_trade_id: int
    last_trade_id: int
    time_ms: int
    is_buyer_maker: bool

    @property
    def trade_id(self) -> int:
        """The aggregate's id in its own series, `agg_id`: what `ingest --stream aggTrade`
        tracks, as a trade run tracks trade ids (duplicates, gaps, backfill pages)."""
        return self.agg_id


#: One record of a captured series: a trade, or an aggregate trade (`ingest --stream`). Both
#: carry `symbol`, `trade_id` (the id in their series), `price`, `quantity` and `time_ms`.
SeriesRecord = WireTrade | WireAggTrade


# --- events: everything a stream connection can send that is not a trade -------------------


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """The server will close this connection soon; open a replacement now."""

    event_time_ms: int | None


@dataclass(frozen=True, slots=True)
class ControlResponse:
    """Success answer to a SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS/..._PROPERTY request."""

    id: int | str | None
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """A rejected request, flat ``{"code","msg"}`` or nested ``{"error":{...},"id"}``."""

    code: int | None
    msg: str
    id: int | str | None = None
    data: Any = None


@dataclass(frozen=True, slots=True)
class NonMarketTrade:
    """A futures trade that did not fill in the order book (``X``: ``INSURANCE_FUND``, ``ADL``,
    ``NA``, …). It is not stored (REST and the archives never carry it), but its id is taken:
    a consumer that tracks ids counts it as seen, so it does not open a gap."""

    symbol: str
    trade_id: int
    kind: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A well-formed frame that is not a Spot trade (aggTrade, bookTicker, futures trade...)."""

    event_type: str
    stream: str | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that is not valid JSON or violates the trade schema; count it, never crash."""

    reason: str


Event = ServerShutdown | ControlResponse | ErrorFrame | NonMarketTrade | OtherEvent | Malformed


# --- wire schema ------------------------------------------------------------------------------


class _TradePayload(msgspec.Struct, gc=False):
    """The ``data`` of a ``@trade`` frame. Unknown fields (``b``, ``a``) are ignored."""

    e: str
    s: str
    t: int
    # Strings on purpose: msgspec would also accept JSON numbers into Decimal, and a numeric
    # price has gone through someone's float; Binance always sends strings.
    p: str
    q: str
    T: int
    m: bool
    # "M" is documented as "ignore"; a futures frame lacks it and carries "X" instead.
    M: bool | None = None
    X: str | None = None


class _CombinedTrade(msgspec.Struct, gc=False):
    stream: str
    data: _TradePayload


class _RestRow(msgspec.Struct, gc=False):
    id: int
    price: str
    qty: str
    time: int
    isBuyerMaker: bool


class _AggRow(msgspec.Struct, gc=False):
    a: int
    f: int
    l: int  # noqa: E741 - Binance's field name


class _AggRestRow(msgspec.Struct, gc=False):
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's field name
    T: int
    m: bool


class _AggPayload(_AggRestRow, gc=False):
    """The ``data`` of an ``@aggTrade`` frame: a REST row with the event's name and symbol
    (Spot adds ``M``, USD-M may add ``nq``; unknown fields are ignored)."""

    e: str
    s: str


class _CombinedAgg(msgspec.Struct, gc=False):
    stream: str
    data: _AggPayload


_COMBINED_DECODER = msgspec.json.Decoder(_CombinedTrade)
_RAW_DECODER = msgspec.json.Decoder(_TradePayload)
_REST_DECODER = msgspec.json.Decoder(list[_RestRow])
_AGG_DECODER = msgspec.json.Decoder(list[_AggRow])
_AGG_REST_DECODER = msgspec.json.Decoder(list[_AggRestRow])
_COMBINED_AGG_DECODER = msgspec.json.Decoder(_CombinedAgg)
_RAW_AGG_DECODER = msgspec.json.Decoder(_AggPayload)
_ANY_DECODER = msgspec.json.Decoder()


def to_milliseconds(epoch: int) -> int:
    """Return a Binance epoch in ms, flooring a 16-digit microsecond value."""
    return epoch // 1000 if epoch >= MICROSECOND_EPOCH_THRESHOLD else epoch


def _positive_decimal(text: str) -> Decimal | None:
    """Parse a Binance decimal string; ``None`` if it is not a finite positive number."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= _ZERO:
        return None
    return value


def _trade_or_reason(d: _TradePayload, stream: str | None) -> WireTrade | Event:
    """Validate a typed Spot payload; the fast path's only per-frame logic (inline on purpose:
    a call per frame costs a few percent of the decode)."""
    if d.e != "trade":
        return OtherEvent(d.e, stream)
    if d.X is not None:
        # Futures trades share the event name; a Spot store must not take them.
        return OtherEvent("futures_trade", stream)
    if stream is not None and (stream[-6:] != TRADE_STREAM_SUFFIX or stream[:-6].upper() != d.s):
        return Malformed(f"stream {stream!r} does not match symbol {d.s!r}")
    price = _positive_decimal(d.p)
    if price is None:
        return Malformed(f"price {d.p!r} is not a positive decimal")
    quantity = _positive_decimal(d.q)
    if quantity is None:
        return Malformed(f"quantity {d.q!r} is not a positive decimal")
    return WireTrade(d.s, d.t, price, quantity, to_milliseconds(d.T), d.m)


def _futures_trade_or_reason(d: _TradePayload, stream: str | None) -> WireTrade | Event:
    """Validate a typed futures payload: only ``X == MARKET`` (or no ``X``) is a trade to
    store; another kind keeps its id as a :class:`NonMarketTrade`."""
    if d.e != "trade":
        return OtherEvent(d.e, stream)
    if d.X is None and d.M is not None:
        # A Spot frame (it has "M", futures frames have "X"): wrong endpoint for this market.
        return OtherEvent("spot_trade", stream)
    kind, d.X = d.X, None  # the payload is this decode's own: Spot's checks apply from here
    checked = _trade_or_reason(d, stream)
    if kind is None or kind == MARKET_TRADE or type(checked) is not WireTrade:
        return checked
    return NonMarketTrade(d.s, d.t, kind, checked.time_ms)


def decode_frame(frame: bytes | str) -> WireTrade | Event:
    """Decode one text frame of a Spot combined (``/stream``) or raw (``/ws``) connection.

    Returns a :class:`WireTrade` or an :data:`Event`; never raises for bad input.
    """
    try:
        combined = _COMBINED_DECODER.decode(frame)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _decode_slow(frame, _trade_or_reason)
    return _trade_or_reason(combined.data, combined.stream)


def decode_futures_frame(frame: bytes | str) -> WireTrade | Event:
    """Decode one text frame of a USD-M or COIN-M connection: a ``MARKET`` trade is a
    :class:`WireTrade`, any other ``X`` a :class:`NonMarketTrade`; never raises."""
    try:
        combined = _COMBINED_DECODER.decode(frame)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _decode_slow(frame, _futures_trade_or_reason)
    return _futures_trade_or_reason(combined.data, combined.stream)


def frame_decoder(market: Market) -> Callable[[bytes | str], WireTrade | Event]:
    """The ``@trade`` frame decoder of ``market``."""
    return decode_frame if market is Market.SPOT else decode_futures_frame


def decode_agg_frame(frame: bytes | str) -> WireAggTrade | Event:
    """Decode one ``@aggTrade`` frame (combined or raw) of any market; never raises."""
    try:
        combined = _COMBINED_AGG_DECODER.decode(frame)
        return _agg_or_reason(combined.data, combined.stream)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    try:
        return _agg_or_reason(_RAW_AGG_DECODER.decode(frame), None)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    event = _decode_slow(frame, _trade_or_reason)
    if isinstance(event, WireTrade):
        return OtherEvent("trade", None)
    return event


def _agg_or_reason(d: _AggPayload, stream: str | None) -> WireAggTrade | Event:
    if d.e != "aggTrade":
        return OtherEvent(d.e, stream)
    suffix = len(AGG_TRADE_STREAM_SUFFIX)
    if stream is not None and (
        stream[-suffix:] != AGG_TRADE_STREAM_SUFFIX or stream[:-suffix].upper() != d.s
    ):
        return Malformed(f"stream {stream!r} does not match symbol {d.s!r}")
    price = _positive_decimal(d.p)
    quantity = _positive_decimal(d.q)
    if price is None or quantity is None or d.f < 0 or d.l < d.f:
        return Malformed(f"aggregate {d.a} of {d.s} has an invalid price, quantity or id range")
    return WireAggTrade(d.s, d.a, price, quantity, d.f, d.l, to_milliseconds(d.T), d.m)


# One early return per kind of frame reads better than a ladder of elifs into a variable.
def _decode_slow(  # noqa: PLR0911
    frame: bytes | str, validate: Callable[[_TradePayload, str | None], WireTrade | Event]
) -> WireTrade | Event:
    """Classify a frame the combined fast path rejected."""
    try:
        return validate(_RAW_DECODER.decode(frame), None)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    try:
        obj = _ANY_DECODER.decode(frame)
    except msgspec.DecodeError as exc:
        return Malformed(f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return Malformed(f"JSON {type(obj).__name__}, not an object")
    if "result" in obj and "id" in obj:
        return ControlResponse(obj["id"], obj["result"])
    error = obj.get("error")
    if isinstance(error, dict):
        return _error_frame(error, obj.get("id"))
    if "code" in obj and "msg" in obj:
        return _error_frame(obj, obj.get("id"))
    stream = obj.get("stream")
    if isinstance(stream, str) and isinstance(obj.get("data"), dict):
        return _classify_payload(obj["data"], stream, validate)
    return _classify_payload(obj, None, validate)


def _error_frame(error: dict[str, Any], request_id: Any) -> ErrorFrame:
    code = error.get("code")
    return ErrorFrame(
        code if isinstance(code, int) else None,
        str(error.get("msg", "")),
        request_id,
        error.get("data"),
    )


def _classify_payload(
    data: dict[str, Any],
    stream: str | None,
    validate: Callable[[_TradePayload, str | None], WireTrade | Event],
) -> Event | WireTrade:
    event_type = data.get("e")
    if event_type == "serverShutdown":
        event_time = data.get("E")
        return ServerShutdown(event_time if isinstance(event_time, int) else None)
    if event_type == "trade":
        try:
            payload = msgspec.convert(data, _TradePayload)
        except msgspec.ValidationError as exc:
            return Malformed(f"trade frame violates the schema: {exc}")
        return validate(payload, stream)
    if isinstance(event_type, str):
        return OtherEvent(event_type, stream)
    if stream is not None and "@" in stream:
        # bookTicker and a few others carry no "e"; the stream name says what they are.
        return OtherEvent(stream.partition("@")[2], stream)
    return Malformed("object is neither a stream event nor a control response")


# --- REST ------------------------------------------------------------------------------------


def decode_rest_trades(symbol: str, body: bytes | str) -> list[WireTrade]:
    """Decode a ``/api/v3/trades`` or ``/api/v3/historicalTrades`` body for ``symbol``.

    Raises :class:`ExchangeError` if the body is an error object or violates the row schema.
    """
    rows = _decode_body(_REST_DECODER, body, f"trades page for {symbol}")
    symbol = symbol.upper()
    trades: list[WireTrade] = []
    for row in rows:
        price = _positive_decimal(row.price)
        quantity = _positive_decimal(row.qty)
        if price is None or quantity is None:
            raise ExchangeError(f"trade {row.id} of {symbol} has a non-positive price or quantity")
        trades.append(
            WireTrade(symbol, row.id, price, quantity, to_milliseconds(row.time), row.isBuyerMaker)
        )
    return trades


def decode_newest_agg_trade_id(symbol: str, body: bytes | str) -> int | None:
    """The highest last-trade-id ``l`` in an ``aggTrades`` body; None for an empty list.

    Rows of the 2022 data audit (``f = l = -1``) are skipped (protocol notes §6).
    """
    rows = _decode_body(_AGG_DECODER, body, f"aggTrades answer for {symbol}")
    ids = [row.l for row in rows if row.f >= 0 and row.l >= 0]
    return max(ids) if ids else None


def decode_rest_agg_trades(symbol: str, body: bytes | str) -> list[WireAggTrade]:
    """Decode an ``aggTrades`` body (any market) for ``symbol``, ascending.

    Rows of the 2022 data audit (``p = q = 0``, ``f = l = -1``) are skipped (protocol notes §6).
    Raises :class:`ExchangeError` if the body is an error object or violates the row schema.
    """
    rows = _decode_body(_AGG_REST_DECODER, body, f"aggTrades answer for {symbol}")
    symbol = symbol.upper()
    out: list[WireAggTrade] = []
    for row in rows:
        if row.f < 0 or row.l < 0:
            continue
        price, quantity = _positive_decimal(row.p), _positive_decimal(row.q)
        if price is None or quantity is None or row.l < row.f:
            raise ExchangeError(f"aggregate trade {row.a} of {symbol} is not a valid aggregate")
        out.append(
            WireAggTrade(
                symbol, row.a, price, quantity, row.f, row.l, to_milliseconds(row.T), row.m
            )
        )
    return out


def _decode_body(decoder: msgspec.json.Decoder[_T], body: bytes | str, what: str) -> _T:
    """Decode a REST body, or raise ExchangeError naming ``what`` and Binance's message."""
    try:
        return decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ExchangeError(f"unexpected {what}: {_describe(body, exc)}") from None


def _describe(body: bytes | str, exc: Exception) -> str:
    try:
        obj = _ANY_DECODER.decode(body)
    except msgspec.DecodeError:
        return str(exc)
    if isinstance(obj, dict) and "msg" in obj:
        return f"code {obj.get('code')}: {obj['msg']}"
    return str(exc)


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One ``exchangeInfo`` entry, reduced to what binprice checks."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal | None
    step_size: Decimal | None
    #: Futures only: ``PERPETUAL``, ``CURRENT_QUARTER``, ``NEXT_QUARTER``, … (None on Spot).
    contract_type: str | None = None
    #: Futures only: listing and delivery (expiry) times, epoch ms. A perpetual's delivery
    #: date is far in the future (4133404800000 = 2100-12-25); a delisting moves it closer.
    onboard_ms: int | None = None
    delivery_ms: int | None = None

    @property
    def is_trading(self) -> bool:
        """Only TRADING symbols produce trades; expect silence from the others."""
        return self.status == "TRADING"

    @property
    def is_perpetual(self) -> bool:
        return self.contract_type == "PERPETUAL"


def parse_exchange_info(body: bytes | str) -> dict[str, SymbolInfo]:
    """Map symbol → :class:`SymbolInfo` from an ``exchangeInfo`` body of any market."""
    try:
        obj = _ANY_DECODER.decode(body)
        entries = obj["symbols"]
        result: dict[str, SymbolInfo] = {}
        for entry in entries:
            filters = {f["filterType"]: f for f in entry.get("filters", ())}
            tick = filters.get("PRICE_FILTER", {}).get("tickSize")
            step = filters.get("LOT_SIZE", {}).get("stepSize")
            result[entry["symbol"]] = SymbolInfo(
                symbol=entry["symbol"],
                # COIN-M names it contractStatus; Spot and USD-M status.
                status=entry["status"] if "status" in entry else entry["contractStatus"],
                base_asset=entry.get("baseAsset", ""),
                quote_asset=entry.get("quoteAsset", ""),
                tick_size=Decimal(tick) if tick is not None else None,
                step_size=Decimal(step) if step is not None else None,
                contract_type=entry.get("contractType") or None,
                onboard_ms=_int_or_none(entry.get("onboardDate")),
                delivery_ms=_int_or_none(entry.get("deliveryDate")),
            )
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError, InvalidOperation) as exc:
        # Whatever the shape, one line: the URL may point at something that is not Binance.
        detail = _describe(body, exc) if isinstance(exc, msgspec.DecodeError) else repr(exc)
        raise ExchangeError(
            f"unexpected exchangeInfo answer ({detail}); is the REST URL a Binance API?"
        ) from None
    return result


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_weight_limit(body: bytes | str) -> int | None:
    """The REQUEST_WEIGHT limit per minute an ``exchangeInfo`` body declares (Binance: 6000,
    Binance.US: 1200, the futures markets: 2400), or None if it declares none."""
    try:
        limits = _ANY_DECODER.decode(body).get("rateLimits") or ()
        for entry in limits:
            if (entry.get("rateLimitType"), entry.get("interval"), entry.get("intervalNum")) == (
                "REQUEST_WEIGHT",
                "MINUTE",
                1,
            ):
                limit = entry.get("limit")
                return limit if isinstance(limit, int) and limit > 0 else None
    except (msgspec.DecodeError, AttributeError, TypeError):
        return None
    return None


# --- stream names and control requests -------------------------------------------------------


def stream_name(symbol: str) -> str:
    """``BTCUSDT`` → ``btcusdt@trade`` (stream names are lowercase)."""
    return symbol.lower() + TRADE_STREAM_SUFFIX


def agg_stream_name(symbol: str) -> str:
    """``BTCUSDT`` → ``btcusdt@aggTrade`` (the event name keeps its capital T)."""
    return symbol.lower() + AGG_TRADE_STREAM_SUFFIX


def combined_stream_path(symbols: Iterable[str], name: Callable[[str], str] = stream_name) -> str:
    """Path of a combined connection carrying the trade streams of ``symbols`` (or the
    streams ``name`` gives them: ``agg_stream_name``)."""
    return "/stream?streams=" + "/".join(name(s) for s in symbols)


def split_into_connections(
    symbols: Sequence[str], per_connection: int = MAX_STREAMS_PER_CONNECTION
) -> list[list[str]]:
    """Chunk symbols so no connection exceeds the stream limit (Binance closes with 1008)."""
    if per_connection < 1:
        raise ValueError("per_connection must be at least 1")
    return [list(symbols[i : i + per_connection]) for i in range(0, len(symbols), per_connection)]


def control_request(method: str, params: Sequence[Any] | None, request_id: int | str) -> bytes:
    """Encode a live control request, e.g. ``SUBSCRIBE`` with a list of stream names."""
    message: dict[str, Any] = {"method": method}
    if params is not None:
        message["params"] = list(params)
    message["id"] = request_id
    return msgspec.json.encode(message)
