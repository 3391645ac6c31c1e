"""`ingest --metrics-port`: /metrics and /healthz of a real run, scraped over HTTP while the
exchange and the database fail and recover; and the health judgement on its own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from binprice.db.copy import CopyEncoder
from binprice.errors import ConfigError
from binprice.events import EventKind, IngestEvent
from binprice.exchange.backoff import Backoff
from binprice.exchange.stream import StreamPolicy
from binprice.ingest import IngestConfig, run_ingest
from binprice.ingest.buffer import TradeBuffer
from binprice.ingest.health import RunProbe, health
from binprice.ingest.metrics import MetricsServer
from binprice.ingest.recorder import Phase, Recorder
from binprice.ingest.stats import IngestStats, IngestSummary
from binprice.testing.exchange import TestExchange
from tests.fault_helpers import assert_complete, needs_embedded, postgres_down, wait_until

SYMBOLS = ("BTCUSDT", "ETHUSDT")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _config(ex: TestExchange, tmp_path: Path, **kw: Any) -> IngestConfig:
    return IngestConfig(
        symbols=SYMBOLS,
        ws_url=ex.ws_url,
        rest_url=ex.rest_url,
        spool_dir=tmp_path / "spool",
        memory_limit=1000,
        max_batch=500,
        metrics_port=0,
        **kw,
    )


def _policy() -> StreamPolicy:
    return StreamPolicy(backoff=lambda: Backoff(initial=0.05, cap=0.05))


class _Run:
    """A run in the background and the URL its METRICS event named."""

    def __init__(self, config: IngestConfig, url: str) -> None:
        self.stats = Recorder()
        self.stop = asyncio.Event()
        self.base = ""
        self._served = asyncio.Event()

        def on_event(event: IngestEvent) -> None:
            if event.kind is EventKind.METRICS:
                found = re.search(r"(http://[^/\s]+)/metrics", event.message)
                assert found is not None, event.message
                self.base = found.group(1)
                self._served.set()

        self.task: asyncio.Task[IngestSummary] = asyncio.create_task(
            run_ingest(
                config,
                url,
                stop=self.stop,
                recorder=self.stats,
                on_event=on_event,
                policy=_policy(),
            )
        )

    async def served(self) -> None:
        async with asyncio.timeout(20):
            await self._served.wait()

    async def finish(self) -> IngestSummary:
        self.stop.set()
        return await asyncio.wait_for(self.task, 30)


async def _get(session: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, str, str]:
    async with session.get(url, **kw) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.text()


async def _scrape(session: aiohttp.ClientSession, run: _Run) -> Samples:
    status, content_type, text = await _get(session, run.base + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _healthz(session: aiohttp.ClientSession, run: _Run) -> tuple[int, dict[str, Any]]:
    status, content_type, text = await _get(session, run.base + "/healthz")
    assert content_type.startswith("application/json")
    return status, json.loads(text)


async def _until_health(
    session: aiohttp.ClientSession, run: _Run, status: int, seconds: float = 20
) -> dict[str, Any]:
    """Ask /healthz until it answers `status` (the test's bound: `seconds`)."""
    async with asyncio.timeout(seconds):
        while True:
            got, body = await _healthz(session, run)
            if got == status:
                return body
            await asyncio.sleep(0.05)


def _sym(name: str, symbol: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, (("symbol", symbol),)


@needs_embedded
async def test_metrics_and_health_while_the_database_is_stopped_and_started(
    database_url: str, pg_data_dir: Path, tmp_path: Path
) -> None:
    async with TestExchange(SYMBOLS, seed=71, rate=400) as ex, aiohttp.ClientSession() as http:
        run = _Run(_config(ex, tmp_path), database_url)
        await run.served()
        assert run.base.startswith("http://127.0.0.1:")
        await wait_until(lambda: run.stats.summary().stored >= 400, 20)
        stored_before = {s.symbol: s.stored for s in run.stats.summary().symbols}
        samples = await _scrape(http, run)
        for symbol in SYMBOLS:
            scraped = samples[_sym("binprice_trades_stored_total", symbol)]
            stored_after = {s.symbol: s.stored for s in run.stats.summary().symbols}
            assert stored_before[symbol] <= scraped <= stored_after[symbol]
            assert samples[_sym("binprice_trades_received_total", symbol)] >= scraped
            assert samples[_sym("binprice_open_gaps", symbol)] == 0
            assert 0 <= samples[_sym("binprice_last_trade_age_seconds", symbol)] < 60
        assert samples[("binprice_database_up", ())] == 1
        assert samples[("binprice_healthy", ())] == 1
        assert samples[("binprice_connections_open", ())] == 1
        assert samples[("binprice_connections_wanted", ())] == 1
        assert samples[("binprice_spool_bytes", ())] == 0
        assert samples[("binprice_rest_weight_limit", ())] == 6000
        assert samples[("binprice_rest_weight_total", ())] >= 20  # exchangeInfo at least
        assert samples[("process_resident_memory_bytes", ())] > 0
        histogram = samples[("binprice_commit_latency_seconds_count", ())]
        assert histogram == samples[("binprice_commit_latency_seconds_bucket", (("le", "+Inf"),))]
        assert histogram >= sum(stored_before.values())
        status, body = await _healthz(http, run)
        assert (status, body["status"], body["reasons"]) == (200, "ok", [])
        assert body["phase"] == "streaming" and body["database_up"] is True

        async with postgres_down(pg_data_dir):
            await wait_until(
                lambda: run.stats.snapshot().db_down and run.stats.snapshot().spilled_chunks > 0, 20
            )
            body = await _until_health(http, run, 503)
            assert body["status"] == "unhealthy" and body["database_up"] is False
            assert any("database is unavailable" in r for r in body["reasons"])
            down = await _scrape(http, run)
            assert down[("binprice_database_up", ())] == 0
            assert down[("binprice_healthy", ())] == 0
            assert down[("binprice_database_errors_total", ())] >= 1
            assert down[("binprice_spool_bytes", ())] > 0
            assert down[("binprice_trades_spilled_total", ())] > 0
        received = sum(c.received for c in run.stats.summary().symbols)
        await wait_until(
            lambda: not run.stats.snapshot().db_down and run.stats.summary().stored >= received, 30
        )
        body = await _until_health(http, run, 200)
        assert body["database_up"] is True
        up = await _scrape(http, run)
        assert up[("binprice_database_up", ())] == 1
        assert up[("binprice_reconnects_total", ())] == 0
        summary = await run.finish()
        assert_complete("metrics-postgres-down", ex, database_url, SYMBOLS, summary)
        assert summary.db_errors > 0


async def test_health_turns_503_while_the_exchange_refuses_connections(
    database_url: str, tmp_path: Path
) -> None:
    async with TestExchange(SYMBOLS, seed=72, rate=200) as ex, aiohttp.ClientSession() as http:
        run = _Run(_config(ex, tmp_path, health_threshold=0.3), database_url)
        await run.served()
        await wait_until(lambda: run.stats.summary().stored >= 100, 20)
        await _until_health(http, run, 200)
        ex.faults.refuse_ws_status = 503
        ex.drop_connections()
        body = await _until_health(http, run, 503)
        assert body["connections_open"] == 0 and body["connections_wanted"] == 1
        # Under load a late commit may be a second reason; the connection must be one.
        (reason,) = [r for r in body["reasons"] if "connections down" in r]
        assert reason.startswith("1 of 1 connections down for ")
        assert "HTTP 503" in reason
        samples = await _scrape(http, run)
        assert samples[("binprice_connections_open", ())] == 0
        assert samples[("binprice_reconnects_total", ())] >= 1
        ex.faults.refuse_ws_status = None
        body = await _until_health(http, run, 200)
        assert body["connections_open"] == 1
        summary = await run.finish()
        assert_complete("metrics-ws-refused", ex, database_url, SYMBOLS, summary)


async def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(
    database_url: str, tmp_path: Path
) -> None:
    async with TestExchange(SYMBOLS, seed=73, rate=100) as ex, aiohttp.ClientSession() as http:
        run = _Run(_config(ex, tmp_path), database_url)
        await run.served()
        await wait_until(lambda: run.stats.summary().stored >= 10, 20)
        accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        status, content_type, text = await _get(
            http, run.base + "/metrics", headers={"Accept": accept}
        )
        assert status == 200
        assert content_type.startswith("application/openmetrics-text")
        assert text.rstrip().endswith("# EOF")
        assert "# TYPE binprice_trades_stored counter" in text
        status, _, text = await _get(http, run.base + "/")
        assert status == 200 and "/metrics" in text and "/healthz" in text
        await run.finish()


async def test_a_port_in_use_is_one_clear_error(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with TestExchange(SYMBOLS, seed=74) as ex:
            config = dataclasses.replace(_config(ex, tmp_path), metrics_port=port)
            with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}: "):
                await run_ingest(config, database_url)


# --- the judgement, on its own ------------------------------------------------------------


class _Clock:
    """The recorder's clock, set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _probe(threshold: float = 30.0, clock: _Clock | None = None) -> RunProbe:
    recorder = Recorder(clock=clock or _Clock(1000.0))
    recorder.phase(Phase.STREAMING)
    return RunProbe(recorder, TradeBuffer(None, 100, recorder), threshold)


def _reasons(probe: RunProbe, now: float) -> tuple[str, ...]:
    return health(probe, now).reasons


def test_health_phases() -> None:
    probe = _probe()
    probe.recorder.phase(Phase.STARTING)
    assert _reasons(probe, 1001.0) == ("starting: connecting to the database and the exchange",)
    probe.recorder.phase(Phase.IMPORTING)
    assert health(probe, 1001.0).healthy
    probe.recorder.phase(Phase.STOPPING)
    assert _reasons(probe, 1001.0) == ("stopping",)


def test_health_connections_may_be_down_briefly_but_not_past_the_threshold() -> None:
    clock = _Clock(1000.0)
    probe = _probe(threshold=30.0, clock=clock)
    recorder = probe.recorder
    recorder.want_connections(2)  # fewer open than wanted from 1000.0
    recorder.connected("BTCUSDT", 1)
    recorder.connect_failed("connection failed: refused")
    clock.now = 1029.0
    assert health(probe).healthy
    assert _reasons(probe, 1031.0) == (
        "1 of 2 connections down for 31 s: connection failed: refused",
    )
    recorder.connected("BTCUSDT", 2)
    assert recorder.snapshot().short_since is None
    assert health(probe, 1031.0).healthy


def test_health_a_quiet_market_is_healthy_and_a_stuck_backlog_is_not() -> None:
    probe = _probe(threshold=30.0)
    probe.recorder.committed(CopyEncoder().batch([]), {}, 0, 0.0)  # at 1000.0
    assert health(probe, 5000.0).healthy  # nothing waiting: nothing late
    probe.buffer.items.extend([object()] * 3)  # type: ignore[list-item]
    assert health(probe, 1020.0).healthy
    assert _reasons(probe, 1045.0) == ("nothing committed for 45 s while 3 trades wait",)


def test_health_database_down_is_unhealthy_at_once() -> None:
    probe = _probe()
    probe.recorder.database_failed("connection refused")
    verdict = health(probe, 1000.5)
    assert not verdict.healthy and not verdict.database_up
    assert verdict.as_json()["status"] == "unhealthy"
    assert verdict.reasons[0].startswith("the database is unavailable (1 failed commits)")


async def test_metrics_server_closes_its_port(tmp_path: Path) -> None:
    probe = _probe()
    async with MetricsServer(probe, "127.0.0.1", 0) as server:
        port = int(server.url.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as http:
            status, _, text = await _get(http, server.url + "/metrics")
        assert status == 200 and "binprice_info" in text
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # free again


def test_latency_quantiles_and_max_are_not_capped_at_ten_seconds() -> None:
    """A batch committed 20.165 s after its trades (a database outage): the summary's max is
    exact and its p50/p99 within 1 % of the truth, never the histogram's 10 s top."""
    stats = IngestStats()
    committed_ms = 1_700_000_000_000
    fast = [committed_ms - 5] * 50  # 5 ms
    slow = [committed_ms - lag for lag in range(20_000, 20_166)]  # 20.000 … 20.165 s
    stats.record_latencies(committed_ms, fast + slow)
    summary = stats.summary()
    assert summary.latency_max_ms == 20_165
    assert summary.latency_p99_ms is not None and summary.latency_p50_ms is not None
    assert 20_163 <= summary.latency_p99_ms <= 20_165
    exact_p50 = 20_057  # rank 108 of 216: the 58th of the slow ones
    assert exact_p50 <= summary.latency_p50_ms <= exact_p50 * 1.01
    stats.record_latencies(committed_ms, [committed_ms - 3_600_000])  # an hour
    assert stats.summary().latency_max_ms == 3_600_000
    assert stats.percentile(1.0) == 3_600_000
