"""WebSocket frames as the test exchange writes them: framed once, shared by every connection.

Server-to-client frames are never masked (RFC 6455 5.1), so the exchange frames payloads itself
and writes many frames in one transport write. A connection that negotiated permessage-deflate
(RFC 7692) gets its messages compressed by its own :class:`Deflater`, with context takeover
unless the client asked the server not to.
"""

from __future__ import annotations

import struct
import zlib
from typing import Protocol

from aiohttp import hdrs, web

#: First byte of a final text frame, and the RSV1 bit that marks it compressed (RFC 7692 6).
_TEXT_FINAL = 0x81
_RSV1 = 0x40
_LEN16 = 126
_LEN64 = 127
_MAX_LEN7 = 125
_MAX_LEN16 = 0xFFFF
#: A sync flush ends with an empty stored block; RFC 7692 7.2.1 has the sender drop it.
_DEFLATE_TAIL = b"\x00\x00\xff\xff"


def ws_text_frame(payload: bytes, *, compressed: bool = False) -> bytes:
    """One unmasked WebSocket text frame carrying ``payload``."""
    first = _TEXT_FINAL | (_RSV1 if compressed else 0)
    size = len(payload)
    if size <= _MAX_LEN7:
        return bytes((first, size)) + payload
    if size <= _MAX_LEN16:
        return struct.pack("!BBH", first, _LEN16, size) + payload
    return struct.pack("!BBQ", first, _LEN64, size) + payload


def combined_payload(stream: str, data: bytes) -> bytes:
    """Wrap a raw payload as a combined-stream frame body."""
    return b'{"stream":"' + stream.encode() + b'","data":' + data + b"}"


def server_shutdown_payload(event_ms: int, combined: bool) -> bytes:
    """The ``serverShutdown`` event, in the form of the connection it goes to."""
    data = b'{"e":"serverShutdown","E":%d}' % event_ms
    return combined_payload("!serverShutdown", data) if combined else data


def negotiated_deflater(ws: web.WebSocketResponse) -> Deflater | None:
    """The compressor a prepared ``ws`` agreed on, or ``None`` without permessage-deflate.

    aiohttp accepts the client's offer and answers with its window bits; it adds
    ``server_no_context_takeover`` when the client asked for it, and then we must not take over.
    """
    window_bits = ws.compress
    if not window_bits:
        return None
    agreed = ws.headers.get(hdrs.SEC_WEBSOCKET_EXTENSIONS, "")
    return Deflater(int(window_bits), "server_no_context_takeover" not in agreed)


class Deflater:
    """permessage-deflate for one connection's outgoing text messages."""

    def __init__(self, window_bits: int, context_takeover: bool) -> None:
        self._window_bits = window_bits
        # Without context takeover each message must decompress on its own: a full flush
        # forgets the window after every message.
        self._flush = zlib.Z_SYNC_FLUSH if context_takeover else zlib.Z_FULL_FLUSH
        self._zlib = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits)

    def frame(self, payload: bytes) -> bytes:
        data = self._zlib.compress(payload) + self._zlib.flush(self._flush)
        return ws_text_frame(data.removesuffix(_DEFLATE_TAIL), compressed=True)


class Render(Protocol):
    """Renders recorded item ``index`` as a raw payload (``TradeGenerator.payload``)."""

    def __call__(self, index: int, /, *, microseconds: bool = ...) -> bytes: ...


class Outgoing:
    """One produced trade or aggregate as it goes on the wire, in the forms asked for.

    The combined millisecond frame (what binprice uses) is built eagerly; raw and
    ``timeUnit=MICROSECOND`` variants only when a connection asks for them.
    """

    __slots__ = ("_index", "_render", "_variants", "combined", "payload", "stream", "time")

    def __init__(self, stream: str, payload: bytes, time_us: int, render: Render, index: int):
        self.stream = stream
        #: Trade time in µs: a batch is sent in this order, so symbols interleave.
        self.time = time_us
        self.payload = payload
        self.combined = ws_text_frame(combined_payload(stream, payload))
        self._render = render
        self._index = index
        self._variants: dict[tuple[bool, bool], bytes] | None = None

    def data(self, combined: bool, microseconds: bool) -> bytes:
        """The message body (unframed) for a connection of this form."""
        payload = self._render(self._index, microseconds=True) if microseconds else self.payload
        return combined_payload(self.stream, payload) if combined else payload

    def frame(self, combined: bool, microseconds: bool) -> bytes:
        if combined and not microseconds:
            return self.combined
        if self._variants is None:
            self._variants = {}
        key = (combined, microseconds)
        frame = self._variants.get(key)
        if frame is None:
            frame = self._variants[key] = ws_text_frame(self.data(combined, microseconds))
        return frame
