"""HTTP answers of the test exchange: Binance's JSON error bodies and the request weight budget.

Request weight is counted per fixed minute window, with Binance's 429 → 418 escalation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from binprice.testing.faults import Faults

DEFAULT_WEIGHT_LIMIT = 6000
WINDOW_SECONDS = 60
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


class Refused(Exception):
    """Raised inside a REST handler to answer with a Binance error body."""

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
    #: Requests that arrived while a ban or a 429's Retry-After was in force: each one is what
    #: makes Binance escalate a ban from minutes to days.
    during_ban: int = 0
    during_limit: int = 0

    def charge(self, weight: int, faults: Faults, now: float) -> None:
        """Count ``weight``; raise :class:`Refused` (418/429) when Binance would."""
        if now < self.banned_until:
            self.during_ban += 1
        elif now < self.limited_until:
            self.during_limit += 1
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
        raise Refused(
            429,
            -1003,
            f"Too much request weight used; current limit is {self.limit} request weight per "
            "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            {"Retry-After": str(retry_after), "X-MBX-USED-WEIGHT-1M": str(self.used)},
        )

    def _ban(self, now: float) -> None:
        until_ms = int(self.banned_until * 1000)  # `now` is seconds since the epoch
        raise Refused(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            {"Retry-After": str(math.ceil(self.banned_until - now))},
        )
