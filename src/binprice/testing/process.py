"""Run the test exchange in a child process (benchmarks: the exchange gets its own core)."""

from __future__ import annotations

import asyncio
import subprocess
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


class LocalExchange:
    """The synchronous twin of `ExchangeProcess`, for a command that is not async itself
    (`binprice demo`): ``with LocalExchange(["--rate", "20"]) as ex: ex.ws_url``.

    The child is ``python -m binprice exchange`` on a free port; it is stopped (SIGTERM, then
    waited for) when the block ends, however it ends.
    """

    def __init__(self, args: Sequence[str] = ()) -> None:
        self._args = [*args, "--port", "0"] if "--port" not in args else list(args)
        self._process: subprocess.Popen[bytes] | None = None
        self.ws_url = ""
        self.rest_url = ""

    def __enter__(self) -> LocalExchange:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "binprice", "exchange", *self._args],
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        try:
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError("the local test exchange exited before it announced its URLs")
            urls = msgspec.json.decode(line, type=dict[str, str])
        except BaseException:
            self._terminate()
            raise
        self.ws_url, self.rest_url = urls["ws_url"], urls["rest_url"]
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._terminate()

    def _terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait()
