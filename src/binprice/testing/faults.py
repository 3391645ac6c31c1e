"""Fault knobs of the test exchange, and the junk frames it sends to misbehave.

:class:`Faults` is deliberately mutable: a test flips a knob on a running exchange and the next
frame, connection or request sees it. Counters named ``*_next`` are consumed as they fire.
"""

from __future__ import annotations

from dataclasses import dataclass

from binprice.testing.frames import ws_text_frame

#: Frames a trade reader must survive, after the ``ws`` kinds in the fixtures' errors.jsonl.
#: ``{stream}`` and ``{symbol}`` are filled per connection so only the defect is wrong.
JUNK_FRAMES: dict[str, str] = {
    "malformed_truncated": '{"stream":"{stream}","data":{"e":"trade","E":17799416',
    "malformed_not_json": "not json",
    "malformed_empty": "",
    "malformed_array": "[]",
    "trade_numeric_price": '{"stream":"{stream}","data":{"e":"trade","E":1779941620984,'
    '"s":"{symbol}","t":1,"p":73109.3,"q":"0.00205000","T":1779941620983,"m":true,"M":true}}',
    "trade_missing_id": '{"stream":"{stream}","data":{"e":"trade","E":1779941620984,'
    '"s":"{symbol}","p":"73109.30000000","q":"0.00205000","T":1779941620983,"m":true,"M":true}}',
    "trade_zero_price": '{"stream":"{stream}","data":{"e":"trade","E":1779941620984,'
    '"s":"{symbol}","t":1,"p":"0.00000000","q":"0.00205000","T":1779941620983,"m":true,"M":true}}',
    "non_trade_aggtrade": '{"stream":"{lower}@aggTrade","data":{"e":"aggTrade","E":1779941622565,'
    '"s":"{symbol}","a":3612409871,"p":"73111.11000000","q":"0.08776000","f":6329162644,'
    '"l":6329162646,"T":1779941622564,"m":true,"M":true}}',
    "non_trade_bookticker": '{"stream":"{lower}@bookTicker","data":{"u":78123456789,'
    '"s":"{symbol}","b":"73111.10000000","B":"0.51230000","a":"73111.11000000","A":"1.02000000"}}',
}


def junk_frame(kind: str, stream: str) -> bytes:
    """Junk frame ``kind`` aimed at ``stream`` (``btcusdt@trade``), ready to write."""
    lower = stream.partition("@")[0]
    text = (
        JUNK_FRAMES[kind]
        .replace("{stream}", stream)
        .replace("{symbol}", lower.upper())
        .replace("{lower}", lower)
    )
    return ws_text_frame(text.encode())


@dataclass(slots=True)
class Faults:
    """What the exchange should get wrong. Defaults: behave like a healthy Binance."""

    # --- stream connections ---
    #: Every connection drops (TCP close, no close frame: the client sees 1006) after N frames.
    close_after_frames: int | None = None
    #: Like ``close_after_frames`` but only for the next connection that opens (then cleared).
    close_next_after_frames: int | None = None
    #: The next K trades produced (any symbol) are recorded but sent to nobody: an id gap.
    skip_next: int = 0
    #: The next K trades produced (any symbol) are served nowhere, not even by REST: ids the
    #: exchange never had, which a client can only record as a hole.
    lose_next: int = 0
    #: Futures only: the next K trades are not market trades: their frames carry ``X`` =
    #: ``non_market_kind``, REST, aggTrades and the aggregate stream never carry them (as on
    #: Binance, docs/futures.md §3), so their ids are holes no source fills.
    non_market_next: int = 0
    non_market_kind: str = "INSURANCE_FUND"
    #: Each produced trade is withheld from the stream with this probability.
    skip_fraction: float = 0.0
    #: Each trade frame sent is sent again right after it with this probability.
    duplicate_fraction: float = 0.0
    #: After each trade frame, a junk frame (see ``JUNK_FRAMES``) follows with this probability.
    malformed_fraction: float = 0.0
    #: Each connection goes silent (no data, pings, pongs or replies) after N frames ...
    stall_after_frames: int | None = None
    #: ... for this many seconds; ``None`` = until it is closed.
    stall_seconds: float | None = None
    #: Each connection gets ``serverShutdown`` after N frames, then a 1001 close after a delay.
    shutdown_after_frames: int | None = None
    shutdown_close_delay: float = 0.5
    #: Connections are closed with 1001 this many seconds after opening (Binance: 24 h).
    lifetime_seconds: float | None = None
    #: Refuse the WebSocket upgrade with HTTP 451 (restricted location).
    geo_block_ws: bool = False
    #: Refuse every WebSocket upgrade with this HTTP status while set (503: maintenance).
    refuse_ws_status: int | None = None

    # --- REST ---
    #: The next K REST requests get 429 with Retry-After, whatever the weight used.
    rest_429_next: int = 0
    #: The next K REST requests get 418 (IP banned) with Retry-After.
    rest_418_next: int = 0
    #: A request that arrives while a 429 is still in force gets 418 and bans the IP.
    ban_after_429: bool = False
    #: The next K ``historicalTrades`` requests get ``200 []``, whatever they ask for: a
    #: glitching or lagging node (an empty page is no proof that ids do not exist).
    rest_empty_next: int = 0
    #: The next K REST requests get HTTP 503 (a Binance-side failure, outcome unknown).
    rest_503_next: int = 0
    #: Retry-After of injected 429s and length of a ban, in seconds.
    retry_after_seconds: int = 1
    #: Answer every REST request with HTTP 451.
    geo_block_rest: bool = False

    def take_close_next(self) -> int | None:
        """Consume the one-shot close-after for a connection that is opening."""
        value, self.close_next_after_frames = self.close_next_after_frames, None
        return value
