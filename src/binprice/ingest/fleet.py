"""The run's connections: groups of at most 1024 streams, each `--redundancy` times, that grow
and shrink with the listing (`ingest --all`).

A *slot* is one set of symbols and the replicas that carry it. New symbols fill the slots that
have room (subscribed on their live connections at once), then open new slots; symbols that
stop trading are unsubscribed wherever they are carried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from binprice.exchange.stream import ConnectionGroup, group_label
from binprice.ingest.recorder import Recorder

#: make(symbols, source, replica) -> the group of one replica of a slot.
MakeGroup = Callable[[list[str], int, int], ConnectionGroup]


class Fleet:
    """Owns every ConnectionGroup of the run and the task that runs each."""

    def __init__(
        self, make: MakeGroup, recorder: Recorder, *, replicas: int, capacity: int
    ) -> None:
        self._make = make
        self._recorder = recorder
        self._replicas = replicas
        self._capacity = capacity
        self._slots: list[list[ConnectionGroup]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._tg: asyncio.TaskGroup | None = None

    def start(self, tg: asyncio.TaskGroup, symbols: list[str]) -> None:
        """Open the slots for `symbols` in `tg` (which owns their tasks from then on)."""
        self._tg = tg
        labels = []
        for first in range(0, len(symbols), self._capacity):
            chunk = symbols[first : first + self._capacity]
            labels += [group_label(chunk, r, self._replicas) for r in range(self._replicas)]
        self._recorder.sources(labels)
        source = 0
        for first in range(0, len(symbols), self._capacity):
            chunk = symbols[first : first + self._capacity]
            slot = []
            for replica in range(self._replicas):
                slot.append(self._make(chunk, source, replica))
                source += 1
            self._open(slot)

    def _open(self, slot: list[ConnectionGroup]) -> None:
        assert self._tg is not None
        self._slots.append(slot)
        self.tasks += [self._tg.create_task(group.run()) for group in slot]
        self._recorder.want_connections(sum(len(s) for s in self._slots))

    def carried(self) -> set[str]:
        return {s for slot in self._slots for s in slot[0].symbols}

    def add(self, symbols: list[str]) -> None:
        """Carry `symbols` too: in slots with room, then in new ones."""
        todo = [s for s in symbols if s not in self.carried()]
        for slot in self._slots:
            if not todo:
                return
            taken = slot[0].add(todo)
            for group in slot[1:]:
                group.add(taken)
            todo = todo[len(taken) :]
        for first in range(0, len(todo), self._capacity):
            chunk = todo[first : first + self._capacity]
            slot = []
            for replica in range(self._replicas):
                source = self._recorder.source_added(group_label(chunk, replica, self._replicas))
                slot.append(self._make(chunk, source, replica))
            self._open(slot)

    def remove(self, symbols: list[str]) -> None:
        for slot in self._slots:
            for group in slot:
                group.remove(symbols)
