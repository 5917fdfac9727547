"""The one table renderer of the CLI: rows -> a rich table on the console, or -> a CSV file.

Rows are either dicts (the keys are the columns, in order of first appearance; headers are the keys with ``_`` read
as a space) or sequences with explicit ``columns`` (the headers). Cells that are not strings are formatted by
``format_cell`` on the console and written raw to CSV. Every table the ``pigeon`` verbs print goes through here.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from model.formats.display import format_cell  # noqa: F401 (part of this module's interface)

Row = Mapping[str, Any] | Sequence[Any]


def _keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    return keys


def _grid(rows: Sequence[Row], columns: Sequence[str] | None) -> tuple[list[str], list[list[Any]]]:
    """(headers, cells): dict rows are laid out by key (headers: ``_`` as a space), sequence rows need ``columns``."""
    if columns is not None:
        return list(columns), [list(r.values()) if isinstance(r, Mapping) else list(r) for r in rows]
    keys = _keys(rows)  # type: ignore[arg-type]
    cells = [[r.get(k) for k in keys] for r in rows]  # type: ignore[union-attr]
    return [k.replace("_", " ") for k in keys], cells


def print_table(rows: Sequence[Row], columns: Sequence[str] | None = None, *, title: str | None = None,
                title_justify: str = "left", right: Iterable[str] | None = None, total: Sequence[Any] | None = None,
                empty: str | None = None, console: Any = None) -> None:
    """Print ``rows`` as a rich table.

    ``right``: headers of the right-justified columns (default: those whose first-row cell is a number).
    ``total``: a last row under a separator line. ``empty``: with no rows, print this dim line instead of a table.
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not rows and empty is not None:
        console.print(f"[dim]{empty}[/dim]")
        return
    headers, cells = _grid(rows, columns)
    if right is None:
        right = {h for h, v in zip(headers, cells[0] if cells else []) if isinstance(v, (int, float))}
    right = set(right)
    table = Table(title=title, title_justify=title_justify)  # type: ignore[arg-type]
    for h in headers:
        table.add_column(h, justify="right" if h in right else "left")
    for r in cells:
        table.add_row(*(format_cell(v) for v in r))
    if total is not None:
        table.add_section()
        table.add_row(*(format_cell(v) for v in total))
    console.print(table)


def write_csv(path: Path, rows: Sequence[Row], columns: Sequence[str] | None = None) -> None:
    """Write ``rows`` as CSV with a header line (dict rows: every key any row has, missing cells left empty)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        if columns is None:
            w = csv.DictWriter(f, fieldnames=_keys(rows))  # type: ignore[arg-type]
            w.writeheader()
            w.writerows(rows)  # type: ignore[arg-type]
            return
        headers, cells = _grid(rows, columns)
        out = csv.writer(f)
        out.writerow(headers)
        out.writerows(cells)
