"""The edges a user hits before any trade flows: endpoints that are not what they should be,
a stop while start-up waits on a slow exchange, a symbol the exchange does not know."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from binprice.errors import ExchangeError, SymbolError
from binprice.events import EventKind, IngestEvent
from binprice.exchange.backoff import no_wait
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import IngestConfig, run_ingest
from binprice.testing.exchange import TestExchange
from tests.fault_helpers import HANG_GUARD_SECONDS


class _Endpoint:
    """A local HTTP server that answers the stream handshake (and REST, if asked) badly."""

    def __init__(self, status: int, body: str = "<html>hello</html>") -> None:
        self.status = status
        self.body = body
        self.requests = 0
        #: Set once this many handshakes were answered (see `retried`).
        self.retries_wanted = 5
        self.retried = asyncio.Event()
        self.hung = asyncio.Event()
        #: exchangeInfo requests left unanswered.
        self.hung_requests = 0
        self.release = asyncio.Event()
        self.url = ""

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.requests >= self.retries_wanted:
            self.retried.set()
        return web.Response(status=self.status, text=self.body, content_type="text/html")

    async def _hang(self, request: web.Request) -> web.Response:
        self.hung_requests += 1
        self.hung.set()
        await self.release.wait()  # answers nothing until the test is over
        return web.Response(status=500)


@pytest.fixture
async def endpoint(request: pytest.FixtureRequest) -> AsyncIterator[_Endpoint]:
    status, body = request.param
    server = _Endpoint(status, body)
    app = web.Application()
    app.router.add_get("/stream", server._answer)
    app.router.add_get("/api/v3/exchangeInfo", server._hang)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


def _config(ex: TestExchange, tmp_path: Path, ws_url: str, **kw: object) -> IngestConfig:
    return IngestConfig(
        symbols=("BTCUSDT",),
        ws_url=ws_url,
        rest_url=ex.rest_url,
        spool_dir=tmp_path / "spool",
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ((200, "<html>a web page</html>"), "instead of a WebSocket upgrade"),
        ((404, "not found"), "HTTP 404"),
        ((403, "forbidden"), "HTTP 403"),
    ],
    indirect=["endpoint"],
    ids=["html-page", "404", "403"],
)
async def test_a_stream_endpoint_that_keeps_refusing_the_handshake_is_fatal(
    endpoint: _Endpoint, expected: str, database_url: str, tmp_path: Path
) -> None:
    """An HTML page or a 4xx instead of a WebSocket upgrade, three times in a row: one clear
    ExchangeError naming the URL, instead of retrying forever."""
    async with TestExchange(["BTCUSDT"], rate=10) as ex:
        config = _config(ex, tmp_path, f"ws://{endpoint.url}")
        with pytest.raises(ExchangeError) as caught:
            await asyncio.wait_for(
                run_ingest(config, database_url, policy=StreamPolicy(backoff=no_wait)), 30
            )
    message = str(caught.value)
    assert expected in message and endpoint.url in message and "--ws-url" in message
    assert "\n" not in message
    assert endpoint.requests == 3


@pytest.mark.parametrize("endpoint", [(503, "down for maintenance")], indirect=True)
async def test_a_5xx_handshake_is_retried_and_the_summary_says_why_nothing_was_stored(
    endpoint: _Endpoint, database_url: str, tmp_path: Path
) -> None:
    """503 on every handshake: binprice keeps retrying (the exchange's side may recover); when
    the run ends the summary says it never connected, and why."""
    stop = asyncio.Event()
    async with TestExchange(["BTCUSDT"], rate=10) as ex:
        config = _config(ex, tmp_path, f"ws://{endpoint.url}")
        run = asyncio.create_task(
            run_ingest(config, database_url, stop=stop, policy=StreamPolicy(backoff=no_wait))
        )
        await asyncio.wait_for(endpoint.retried.wait(), 20)
        stop.set()
        summary = await asyncio.wait_for(run, 10)
    assert summary.stored == 0
    assert summary.connect_problem is not None and "HTTP 503" in summary.connect_problem


@pytest.mark.parametrize("endpoint", [(200, "")], indirect=True)
async def test_a_stop_while_the_exchange_check_hangs_ends_the_run_at_once(
    endpoint: _Endpoint, database_url: str, tmp_path: Path
) -> None:
    """The REST server accepts the exchangeInfo request and never answers: a stop (Ctrl+C)
    ends the run without waiting for the request's timeouts and retries."""
    stop = asyncio.Event()
    url = endpoint.url
    config = IngestConfig(
        symbols=("BTCUSDT",),
        ws_url=f"ws://{url}",
        rest_url=f"http://{url}",
        spool_dir=tmp_path / "spool",
    )
    events: list[IngestEvent] = []
    run = asyncio.create_task(run_ingest(config, database_url, stop=stop, on_event=events.append))
    await asyncio.wait_for(endpoint.hung.wait(), 10)
    stop.set()
    summary = await asyncio.wait_for(run, HANG_GUARD_SECONDS)
    assert summary.stored == 0
    # The stop ended it (not the request's timeout, which would raise), and nothing retried.
    assert [e.message for e in events if e.kind is EventKind.STOPPED] == [
        "stopped before streaming began; nothing stored"
    ]
    assert endpoint.hung_requests == 1


async def test_an_unknown_symbol_is_named(database_url: str, tmp_path: Path) -> None:
    """`binprice ingest FOOBAR`: the error says which symbol the exchange does not know."""
    async with TestExchange(["BTCUSDT"], rate=10) as ex:
        config = IngestConfig(
            symbols=("FOOBAR",),
            ws_url=ex.ws_url,
            rest_url=ex.rest_url,
            spool_dir=tmp_path / "spool",
        )
        with pytest.raises(SymbolError, match="unknown symbol on the exchange: FOOBAR"):
            await asyncio.wait_for(run_ingest(config, database_url), 20)
