"""Plain aligned text tables: what a pipe, a log or a terminal without Rich gets."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def aligned(rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    """Rows (the header first) as lines, columns two spaces apart, the columns whose index is
    in `right` right-aligned, trailing spaces cut."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        + "\n"
        for r in rows
    )
