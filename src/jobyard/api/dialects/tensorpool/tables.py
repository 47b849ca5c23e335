"""Tables the TensorPool CLI prints verbatim: the server formats them (the CLI renders nothing).

A table is TSV (one tab between cells, as the seed's "Formatted TSV table" says) whose cells are
padded with spaces to their column's width, so it lines up on a terminal and still splits on
tabs (``cut -f``) for scripts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    text = str(value)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def tsv_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``headers`` and ``rows`` as an aligned TSV table (no trailing newline)."""
    grid = [[cell(h) for h in headers]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(headers))]
    lines = []
    for r in grid:
        padded = [c.ljust(w) for c, w in zip(r[:-1], widths[:-1], strict=True)] + [r[-1]]
        lines.append("\t".join(padded))
    return "\n".join(lines)


def key_value_table(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column ``FIELD / VALUE`` table for one object."""
    return tsv_table(("FIELD", "VALUE"), list(pairs))
