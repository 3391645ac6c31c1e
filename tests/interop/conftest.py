"""The interop clients must work offline: no connection or lookup beyond this machine."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator
from typing import Any

import pytest

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
#: Every connect or name lookup a client tried that would leave the machine.
_OUTSIDE: list[str] = []


def _is_local(host: Any) -> bool:
    if host is None or host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # An audit hook sees what a library does under the hood, whatever HTTP or WebSocket stack
    # it uses (aiohttp, requests, websockets).
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_local(address[0]):
            _OUTSIDE.append(f"connect {address}")
    elif event == "socket.getaddrinfo" and not _is_local(args[0]):
        _OUTSIDE.append(f"lookup {args[0]}")


sys.addaudithook(_audit)  # cannot be removed; it only records


@pytest.fixture(autouse=True)
def stays_on_this_machine() -> Iterator[None]:
    """Fail a test whose client tried to reach anything but the local test exchange."""
    _OUTSIDE.clear()
    yield
    assert not _OUTSIDE, f"the client tried to go online: {_OUTSIDE}"
