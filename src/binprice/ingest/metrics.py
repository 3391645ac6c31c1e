"""`ingest --metrics-port`: Prometheus `/metrics` and `/healthz`, served by the run itself.

The numbers are the run's recorder's snapshot and its parts (`RunProbe`), read when a scraper
asks: `IngestCollector` takes one snapshot per scrape and turns it into metric families, so the
hot path keeps counting in plain integers and nothing is copied between scrapes. The text format,
its content negotiation (the classic text format or OpenMetrics, by the scraper's `Accept`)
and the process metrics (`process_resident_memory_bytes`, `process_cpu_seconds_total`, ...)
come from `prometheus-client`. The HTTP server is aiohttp's, on the run's event loop;
`MetricsServer` owns it from bind to close.

Names follow Prometheus' conventions: `binprice_` then what is counted, base units (seconds,
bytes), `_total` on counters; per-symbol series carry a `symbol` label.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import TracebackType

from aiohttp import web
from prometheus_client import ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from binprice._version import __version__
from binprice.errors import ConfigError
from binprice.ingest.health import RunProbe, health, judge
from binprice.ingest.recorder import RunSnapshot
from binprice.ingest.stats import COMMIT_BUCKETS_SECONDS, LATENCY_BUCKETS_MS

#: Upper bounds (seconds) of the trade-time → commit latency histogram's buckets.
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestCollector(Collector):
    """Every binprice metric of one run, read from its probe at scrape time."""

    def __init__(self, probe: RunProbe) -> None:
        self._probe = probe

    def collect(self) -> Iterator[Metric]:
        probe = self._probe
        snap = probe.recorder.snapshot()
        now_ms = time.time_ns() // 1_000_000
        yield InfoMetricFamily("binprice", "binprice's version.", value={"version": __version__})

        per_symbol = {
            "stored": ("Trades stored, new to the database.", "stored"),
            "received": ("Trades received from the stream and from REST backfill.", "received"),
            "duplicates": ("Trades received again and dropped (already stored).", "duplicates"),
            "backfilled": ("Trades fetched from REST to fill gaps.", "backfilled"),
        }
        symbols = [(s.symbol, s) for s in snap.summary.symbols]
        for name, (doc, attr) in per_symbol.items():
            family = CounterMetricFamily(f"binprice_trades_{name}", doc, labels=["symbol"])
            for symbol, counters in symbols:
                family.add_metric([symbol], getattr(counters, attr))
            yield family
        gaps_opened = CounterMetricFamily(
            "binprice_gaps_opened", "Gaps opened: ids the stream skipped.", labels=["symbol"]
        )
        age = GaugeMetricFamily(
            "binprice_last_trade_age_seconds",
            "Seconds since the trade time of the symbol's last stored trade.",
            labels=["symbol"],
        )
        last_id = GaugeMetricFamily(
            "binprice_last_trade_id", "Id of the symbol's last stored trade.", labels=["symbol"]
        )
        for symbol, counters in symbols:
            gaps_opened.add_metric([symbol], counters.gaps)
            if counters.last_time_ms is not None:
                age.add_metric([symbol], max(0, now_ms - counters.last_time_ms) / 1000)
            if counters.last_trade_id is not None:
                last_id.add_metric([symbol], counters.last_trade_id)
        yield from (gaps_opened, age, last_id)

        open_gaps = GaugeMetricFamily(
            "binprice_open_gaps",
            "Open gaps not yet known to be filled (being fetched from REST).",
            labels=["symbol"],
        )
        open_ids = GaugeMetricFamily(
            "binprice_open_gap_trades", "Trade ids the open gaps still miss.", labels=["symbol"]
        )
        found = probe.gaps.open_gaps() if probe.gaps is not None else {}
        for symbol, _ in symbols:
            count, missing = found.get(symbol, (0, 0))
            open_gaps.add_metric([symbol], count)
            open_ids.add_metric([symbol], missing)
        yield from (open_gaps, open_ids)

        yield _latency(snap)
        yield _commit_durations(snap)
        yield from self._run_gauges(snap)
        yield from self._run_counters(snap)

    def _run_gauges(self, snap: RunSnapshot) -> Iterator[Metric]:
        probe = self._probe
        spool = probe.buffer.spool
        healthy = judge(snap, probe.buffer, probe.threshold, snap.at).healthy
        gauges: list[tuple[str, str, float]] = [
            ("binprice_database_up", "1 while the database takes commits.", not snap.db_down),
            ("binprice_healthy", "1 while /healthz answers 200.", healthy),
            ("binprice_connections_open", "WebSocket connections open.", snap.open_connections),
            (
                "binprice_connections_wanted",
                "WebSocket connections the run keeps open when all is well.",
                snap.wanted_connections,
            ),
            ("binprice_symbols", "Symbols carried.", snap.symbols_carried),
            (
                "binprice_memory_trades",
                "Trades received and waiting in memory for a commit.",
                len(probe.buffer),
            ),
            (
                "binprice_spool_bytes",
                "Bytes of spooled trades on disk, waiting for the database.",
                spool.bytes if spool is not None else 0,
            ),
            (
                "binprice_spool_chunks",
                "Spool chunks waiting for the database.",
                len(spool) if spool is not None else 0,
            ),
        ]
        rest = probe.rest
        if rest is not None:
            gauges += [
                (
                    "binprice_rest_weight_used",
                    "REST request weight used this minute, as the exchange last counted it "
                    "(X-MBX-USED-WEIGHT-1M).",
                    rest.used_weight,
                ),
                (
                    "binprice_rest_weight_limit",
                    "REST request weight the exchange allows per minute (its exchangeInfo's).",
                    rest.weight_limit,
                ),
            ]
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=float(value))

    def _run_counters(self, snap: RunSnapshot) -> Iterator[Metric]:
        probe = self._probe
        stats = snap.summary
        counters: list[tuple[str, str, float]] = [
            ("binprice_connections_opened", "WebSocket connections opened.", snap.connections),
            ("binprice_reconnects", "Reconnects (rotations included).", stats.reconnects),
            ("binprice_batches_committed", "Batches committed.", stats.batches),
            ("binprice_database_errors", "Commits that failed.", stats.db_errors),
            ("binprice_trades_spilled", "Trades written to the spool.", stats.spilled),
            (
                "binprice_trades_dropped",
                "Trades that could be neither committed nor spooled (recorded as gaps).",
                stats.dropped,
            ),
            (
                "binprice_reconcile_checks",
                "Newest-id questions asked of the exchange.",
                stats.reconcile_checks,
            ),
        ]
        rest = probe.rest
        if rest is not None:
            counters += [
                ("binprice_rest_weight", "REST request weight spent.", rest.weight_spent),
                ("binprice_rest_requests", "REST requests sent.", rest.requests),
                (
                    "binprice_rest_rate_limited",
                    "REST answers 429/418 waited out.",
                    rest.rate_limited,
                ),
            ]
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)
        rejected = CounterMetricFamily(
            "binprice_frames_rejected", "Stream frames that were not trades.", labels=["kind"]
        )
        rejected.add_metric(["malformed"], stats.malformed)
        rejected.add_metric(["error"], stats.error_frames)
        rejected.add_metric(["other"], stats.other_frames)
        yield rejected


def _latency(snap: RunSnapshot) -> HistogramMetricFamily:
    hist = snap.latency
    buckets: list[tuple[str, float]] = []
    seen = 0
    start = 0
    for bound in LATENCY_BUCKETS_SECONDS:
        # Index i of `hist` counts latencies of i ms; the last index, everything above.
        end = min(round(bound * 1000), LATENCY_BUCKETS_MS - 1) + 1
        seen += sum(hist[start:end])
        start = end
        buckets.append((_le(bound), seen))
    buckets.append(("+Inf", seen + sum(hist[start:])))
    return HistogramMetricFamily(
        "binprice_commit_latency_seconds",
        "Trade time to commit, per stored trade (milliseconds resolution).",
        buckets=buckets,
        sum_value=snap.latency_sum_ms / 1000,
    )


def _commit_durations(snap: RunSnapshot) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = []
    seen = 0
    for bound, count in zip(COMMIT_BUCKETS_SECONDS, snap.commit_durations, strict=False):
        seen += count
        buckets.append((_le(bound), seen))
    buckets.append(("+Inf", seen + snap.commit_durations[-1]))
    return HistogramMetricFamily(
        "binprice_commit_duration_seconds",
        "How long one batch's commit took.",
        buckets=buckets,
        sum_value=snap.commit_seconds,
    )


def _le(bound: float) -> str:
    return f"{bound:g}"


def registry_for(probe: RunProbe) -> CollectorRegistry:
    """A registry of this run's metrics and the process's (memory, CPU, open files)."""
    registry = CollectorRegistry()
    registry.register(IngestCollector(probe))
    ProcessCollector(registry=registry)
    return registry


class MetricsServer:
    """Owns the HTTP server of `/metrics` and `/healthz` from bind (enter) to close (exit)."""

    def __init__(self, probe: RunProbe, host: str, port: int) -> None:
        self._probe = probe
        self._host = host
        self._port = port
        self._registry = registry_for(probe)
        self._runner: web.AppRunner | None = None
        #: Where it listens once entered (the port the system chose when asked for 0).
        self.url = ""

    async def __aenter__(self) -> MetricsServer:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/", self._index)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            reason = exc.strerror or str(exc)
            raise ConfigError(
                f"cannot serve metrics on {self._host}:{self._port}: {reason}; choose another "
                "--metrics-port (or BINPRICE_METRICS_PORT)"
            ) from None
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self._registry), headers={"Content-Type": content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        verdict = health(self._probe)
        return web.Response(
            text=json.dumps(verdict.as_json()) + "\n",
            status=200 if verdict.healthy else 503,
            content_type="application/json",
        )

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="binprice ingest: /metrics (Prometheus), /healthz (JSON)\n")
