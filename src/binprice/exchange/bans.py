"""The exchange's refusals (HTTP 418 bans, 429 `Retry-After`), remembered across processes.

Binance limits REST requests per IP, and every binprice process on the machine shares that IP:
an `ingest` that was banned and a `gaps --repair` started a minute later are the same caller to
the exchange, and Binance lengthens repeated bans from 2 minutes to 3 days. So the "not before"
time a refusal sets is kept in a private file of the data directory (`rest-bans.json`, 0600),
per REST host and weight pool, and every process's REST client reads it before it sends.

The file is tiny, written whole and renamed into place (a reader never sees half of it), and
read again only when it changed. A file that cannot be read or written is ignored: the
process then still honours its own refusals, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from binprice._fs import PRIVATE_FILE_MODE, make_private_dirs

FILE_NAME = "rest-bans.json"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Until when (epoch seconds) the exchange refuses a weight pool, and the HTTP status."""

    until: float
    status: int


class BanBook:
    """The refusals of every REST host and weight pool, shared through `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._entries: dict[str, Refusal] = {}

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> BanBook:
        """The book every binprice process of `data_dir` shares."""
        return cls(data_dir / FILE_NAME)

    def get(self, host: str, pool: str) -> Refusal | None:
        """The latest refusal recorded for `pool` of `host`, by any process (None: none)."""
        self._reload()
        return self._entries.get(_key(host, pool))

    def record(self, host: str, pool: str, refusal: Refusal, now: float) -> None:
        """Keep `refusal` unless a longer one is recorded; drop entries that ended by `now`."""
        self._reload()
        key = _key(host, pool)
        known = self._entries.get(key)
        if refusal.until <= now or (known is not None and known.until >= refusal.until):
            return
        entries = {k: r for k, r in self._entries.items() if r.until > now}
        entries[key] = refusal
        with contextlib.suppress(OSError):
            make_private_dirs(self.path.parent)
            part = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "w") as out:
                json.dump({k: [r.until, r.status] for k, r in entries.items()}, out)
            os.replace(part, self.path)
        self._entries = entries

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except OSError:
            return
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return
        try:
            raw = json.loads(self.path.read_text())
            self._entries = {str(k): Refusal(float(v[0]), int(v[1])) for k, v in dict(raw).items()}
        except (OSError, ValueError, TypeError, IndexError):
            return  # unreadable or half-foreign: this process's own refusals still hold
        self._seen = seen


def _key(host: str, pool: str) -> str:
    return f"{host} {pool}"
