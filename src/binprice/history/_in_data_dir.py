"""`import_history` as the library starts it: the options' downloads spool and the exchange's
refusals in the store's data directory unless the caller chose, the schema migrated first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import MISSING, Field, fields, replace
from pathlib import Path
from typing import Any

from binprice.db import describe
from binprice.exchange.bans import BanBook
from binprice.history._importer import import_history
from binprice.history._options import ImportOptions
from binprice.history._results import FileProgress, ImportEvent, ImportSummary


def options_in(
    data_dir: Path, options: ImportOptions | None, given: dict[str, Any]
) -> ImportOptions:
    """`options` (or the defaults) with the `given` fields; where downloads and the exchange's
    refusals go is `data_dir`'s unless a field or `options` chose otherwise."""
    chosen = ImportOptions(**given) if options is None else replace(options, **given)
    home: dict[str, Any] = {
        "spool_dir": data_dir / "downloads",
        "bans_file": BanBook.in_data_dir(data_dir).path,
    }
    return replace(
        chosen,
        **{
            f.name: home[f.name]
            for f in fields(ImportOptions)
            if f.name in home and f.name not in given and getattr(chosen, f.name) == _default(f)
        },
    )


async def import_migrated(
    options: ImportOptions,
    migrate: Callable[[], bool],
    url: Callable[[], str],
    *,
    stop: asyncio.Event | None = None,
    on_event: Callable[[ImportEvent], None] | None = None,
    on_progress: Callable[[FileProgress], None] | None = None,
    on_migrated: Callable[[str], None] | None = None,
) -> ImportSummary:
    """`import_history` once `migrate` (run in a thread: it may start the server) has put the
    database at `url()` at head; `on_migrated` hears where it is if it did."""
    migrated = await asyncio.to_thread(migrate)
    where = url()
    if migrated and on_migrated is not None:
        on_migrated(describe(where))
    return await import_history(
        options, where, stop=stop, on_event=on_event, on_progress=on_progress
    )


def _default(field: Field[Any]) -> Any:
    """A dataclass field's default value."""
    if field.default_factory is not MISSING:
        return field.default_factory()
    return field.default
