"""Disjoint inclusive ranges of trade ids: what one symbol is still missing."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class GapSet:
    """Disjoint inclusive id ranges still missing for one symbol."""

    ranges: list[list[int]] = field(default_factory=list)

    def add(self, first: int, last: int) -> None:
        """Note `first..last` as missing (ids already noted are not noted twice)."""
        self.remove(first, last)
        self.ranges.append([first, last])

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def missing(self) -> int:
        return sum(b - a + 1 for a, b in self.ranges)

    def claim(self, trade_id: int) -> bool:
        """Remove `trade_id` if it is missing; True if it was."""
        for i, (first, last) in enumerate(self.ranges):
            if first <= trade_id <= last:
                if first == last:
                    del self.ranges[i]
                elif trade_id == first:
                    self.ranges[i][0] = first + 1
                elif trade_id == last:
                    self.ranges[i][1] = last - 1
                else:
                    self.ranges[i][1] = trade_id - 1
                    self.ranges.insert(i + 1, [trade_id + 1, last])
                return True
        return False

    def remove(self, first: int, last: int) -> None:
        """Forget [first, last] (ids that will never come: a confirmed hole)."""
        kept: list[list[int]] = []
        for a, b in self.ranges:
            if b < first or a > last:
                kept.append([a, b])
                continue
            if a < first:
                kept.append([a, first - 1])
            if b > last:
                kept.append([last + 1, b])
        self.ranges = kept

    def within(self, first: int, last: int) -> list[tuple[int, int]]:
        """The still-missing parts of [first, last]."""
        return [(max(a, first), min(b, last)) for a, b in self.ranges if a <= last and b >= first]
