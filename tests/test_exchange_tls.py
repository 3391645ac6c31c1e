"""The test exchange over TLS: wss:// and https:// with a self-signed certificate."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import aiohttp
import pytest

from binprice.errors import UsageError
from binprice.exchange.protocol import decode_rest_trades
from binprice.testing import ExchangeProcess, TestExchange
from binprice.testing.cli import ExchangeOptions, build_exchange
from binprice.testing.tls import Method, client_context, self_signed
from tests.test_exchange import frames, trades_of

GENERATORS = [
    pytest.param(
        "cryptography",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("cryptography") is None, reason="cryptography not installed"
        ),
    ),
    pytest.param(
        "openssl",
        marks=pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command"),
    ),
]


@pytest.mark.parametrize("method", GENERATORS)
async def test_wss_and_https_with_a_generated_certificate(tmp_path: Path, method: Method) -> None:
    """Either generator makes a certificate a verifying client accepts for 127.0.0.1."""
    files = self_signed(tmp_path, ["127.0.0.1"], method=method)
    ssl = client_context(files.cert)
    async with (
        TestExchange(["BTCUSDT"], seed=61, max_trades=30, tls=files) as ex,
        aiohttp.ClientSession() as session,
    ):
        assert ex.ws_url.startswith("wss://") and ex.rest_url.startswith("https://")
        async with session.ws_connect(ex.ws_url + "/ws/btcusdt@trade", ssl=ssl, compress=15) as ws:
            assert trades_of(await frames(ws, 30)) == ex.produced("BTCUSDT")
        url = ex.rest_url + "/api/v3/trades?symbol=BTCUSDT&limit=30"
        async with session.get(url, ssl=ssl) as r:
            assert decode_rest_trades("BTCUSDT", await r.read()) == ex.produced("BTCUSDT")
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(ex.rest_url + "/api/v3/ping")  # not trusted by default


async def test_tls_true_makes_a_certificate_for_the_exchange() -> None:
    """TestExchange(tls=True) generates one at start; tls_files.cert is what to trust."""
    async with TestExchange(["BTCUSDT"], tls=True) as ex, aiohttp.ClientSession() as session:
        assert ex.tls_files is not None
        ssl = client_context(ex.tls_files.cert)
        async with session.get(ex.rest_url + "/api/v3/ping", ssl=ssl) as r:
            assert await r.json() == {}


async def test_command_line_tls_announces_the_certificate() -> None:
    """--tls serves https and wss and names the certificate in the announcement."""
    async with ExchangeProcess(["--tls", "--rate", "200", "--symbols", "BTCUSDT"]) as proc:
        assert proc.rest_url.startswith("https://") and proc.cert.endswith("cert.pem")
        ssl = client_context(Path(proc.cert))
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(proc.ws_url + "/ws/btcusdt@trade", ssl=ssl) as ws:
                assert trades_of(await frames(ws, 3), "BTCUSDT")
            async with session.get(proc.rest_url + "/api/v3/time", ssl=ssl) as r:
                assert "serverTime" in await r.json()


def test_command_line_cert_and_key_go_together(tmp_path: Path) -> None:
    """--cert/--key serve a given certificate; one without the other is an error."""
    files = self_signed(tmp_path)
    options = ExchangeOptions("BTCUSDT", cert=files.cert, key=files.key)
    assert build_exchange(options).tls_files == files
    with pytest.raises(UsageError, match="--cert and --key go together"):
        build_exchange(ExchangeOptions("BTCUSDT", cert=files.cert))
