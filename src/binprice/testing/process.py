"""Run the test exchange in a child process (benchmarks: the exchange gets its own core)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from types import TracebackType

import msgspec

#: How long the child may take to import and bind before we give up.
STARTUP_TIMEOUT_SECONDS = 30.0


class ExchangeProcess:
    """``async with ExchangeProcess(["--rate", "max"]) as ex: ex.ws_url, ex.rest_url``.

    ``args`` are command-line options of ``binprice exchange`` (run as ``python -m binprice
    exchange``, so no console script is needed); the port defaults to a free one.
    """

    def __init__(self, args: Sequence[str] = ()) -> None:
        self._args = list(args)
        if "--port" not in self._args:
            self._args += ["--port", "0"]
        self._process: asyncio.subprocess.Process | None = None
        self.ws_url = ""
        self.rest_url = ""
        #: Path of the certificate the child serves (with ``--tls``), else empty.
        self.cert = ""

    async def __aenter__(self) -> ExchangeProcess:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "binprice",
            "exchange",
            *self._args,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                line = await self._process.stdout.readline()
            urls = msgspec.json.decode(line, type=dict[str, str])
        except BaseException:
            await self._terminate()
            raise
        self.ws_url, self.rest_url = urls["ws_url"], urls["rest_url"]
        self.cert = urls.get("cert", "")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._terminate()

    async def _terminate(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
