"""Pure Binance Spot protocol code: stream names, frame decoding, REST row decoding.

Nothing here does I/O. The hot path is :func:`decode_frame` on a combined-stream ``@trade``
frame: one typed msgspec decode straight from bytes, then a handful of cheap checks. Anything
the fast path cannot turn into a :class:`WireTrade` is classified by a slower generic decode into
one of the :data:`Event` variants, so the reader never has to catch exceptions per frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from binprice.errors import ExchangeError
from binprice.symbols import MAX_STREAMS_PER_CONNECTION

#: A time field at or above this is a microsecond epoch (16 digits, ``timeUnit=MICROSECOND``).
#: Millisecond epochs stay below it until the year 5138, microsecond ones are above it since 1973.
MICROSECOND_EPOCH_THRESHOLD = 10**14
#: Suffix of the trade stream name: ``btcusdt@trade``.
TRADE_STREAM_SUFFIX = "@trade"
#: Stream name Binance puts on the combined ``serverShutdown`` event.
SERVER_SHUTDOWN_STREAM = "!serverShutdown"

_ZERO = Decimal(0)


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
class OtherEvent:
    """A well-formed frame that is not a Spot trade (aggTrade, bookTicker, futures trade...)."""

    event_type: str
    stream: str | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that is not valid JSON or violates the trade schema; count it, never crash."""

    reason: str


Event = ServerShutdown | ControlResponse | ErrorFrame | OtherEvent | Malformed


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


_COMBINED_DECODER = msgspec.json.Decoder(_CombinedTrade)
_RAW_DECODER = msgspec.json.Decoder(_TradePayload)
_REST_DECODER = msgspec.json.Decoder(list[_RestRow])
_AGG_DECODER = msgspec.json.Decoder(list[_AggRow])
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
    """Validate a typed payload; the fast path's only per-frame logic."""
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


def decode_frame(frame: bytes | str) -> WireTrade | Event:
    """Decode one text frame of a combined (``/stream``) or raw (``/ws``) connection.

    Returns a :class:`WireTrade` or an :data:`Event`; never raises for bad input.
    """
    try:
        combined = _COMBINED_DECODER.decode(frame)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _decode_slow(frame)
    return _trade_or_reason(combined.data, combined.stream)


# One early return per kind of frame reads better than a ladder of elifs into a variable.
def _decode_slow(frame: bytes | str) -> WireTrade | Event:  # noqa: PLR0911
    """Classify a frame the combined fast path rejected."""
    try:
        return _trade_or_reason(_RAW_DECODER.decode(frame), None)
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
        return _classify_payload(obj["data"], stream)
    return _classify_payload(obj, None)


def _error_frame(error: dict[str, Any], request_id: Any) -> ErrorFrame:
    code = error.get("code")
    return ErrorFrame(
        code if isinstance(code, int) else None,
        str(error.get("msg", "")),
        request_id,
        error.get("data"),
    )


def _classify_payload(data: dict[str, Any], stream: str | None) -> Event | WireTrade:
    event_type = data.get("e")
    if event_type == "serverShutdown":
        event_time = data.get("E")
        return ServerShutdown(event_time if isinstance(event_time, int) else None)
    if event_type == "trade":
        try:
            payload = msgspec.convert(data, _TradePayload)
        except msgspec.ValidationError as exc:
            return Malformed(f"trade frame violates the schema: {exc}")
        return _trade_or_reason(payload, stream)
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
    try:
        rows = _REST_DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ExchangeError(
            f"unexpected trades page for {symbol}: {_describe(body, exc)}"
        ) from None
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
    try:
        rows = _AGG_DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ExchangeError(
            f"unexpected aggTrades answer for {symbol}: {_describe(body, exc)}"
        ) from None
    ids = [row.l for row in rows if row.f >= 0 and row.l >= 0]
    return max(ids) if ids else None


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

    @property
    def is_trading(self) -> bool:
        """Only TRADING symbols produce trades; expect silence from the others."""
        return self.status == "TRADING"


def parse_exchange_info(body: bytes | str) -> dict[str, SymbolInfo]:
    """Map symbol → :class:`SymbolInfo` from an ``exchangeInfo`` body."""
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
                status=entry["status"],
                base_asset=entry.get("baseAsset", ""),
                quote_asset=entry.get("quoteAsset", ""),
                tick_size=Decimal(tick) if tick is not None else None,
                step_size=Decimal(step) if step is not None else None,
            )
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError, InvalidOperation) as exc:
        # Whatever the shape, one line: the URL may point at something that is not Binance.
        detail = _describe(body, exc) if isinstance(exc, msgspec.DecodeError) else repr(exc)
        raise ExchangeError(
            f"unexpected exchangeInfo answer ({detail}); is the REST URL a Binance API?"
        ) from None
    return result


def parse_weight_limit(body: bytes | str) -> int | None:
    """The REQUEST_WEIGHT limit per minute an ``exchangeInfo`` body declares (Binance: 6000,
    Binance.US: 1200), or None if it declares none."""
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


def combined_stream_path(symbols: Iterable[str]) -> str:
    """Path of a combined connection carrying the trade streams of ``symbols``."""
    return "/stream?streams=" + "/".join(stream_name(s) for s in symbols)


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
