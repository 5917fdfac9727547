"""``pigeon stats --matchlog PATH``: the bot's match log as rich tables (and CSV with ``--export csv``)."""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def run_matchlog_stats(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from bot import matchlog

    conn = matchlog.open_readonly(args.matchlog)
    try:
        tables = {"bot summary": matchlog.summary_stats(conn), "recent matches": matchlog.recent_matches(conn),
                  "events": matchlog.event_counts(conn)}
        rounds = matchlog.rounds_table(conn) if getattr(args, "export", None) else []
    finally:
        conn.close()
    console = Console()
    for title, rows in tables.items():
        if not rows:
            console.print(f"[dim]{title}: none yet[/dim]")
            continue
        t = Table(title=title, title_justify="left")
        for col in rows[0]:
            t.add_column(col.replace("_", " "), justify="right" if isinstance(rows[0][col], (int, float)) else "left")
        for r in rows:
            t.add_row(*(_fmt(v) for v in r.values()))
        console.print(t)
    if getattr(args, "export", None) == "csv":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in {**{k.replace(" ", "_"): v for k, v in tables.items()}, "bot_rounds": rounds}.items():
            cols: list[str] = []
            for r in rows:
                cols += [c for c in r if c not in cols]
            with open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=cols)
                w.writeheader()
                w.writerows(rows)
        print(f"wrote {len(tables) + 1} CSV files to {out}", file=sys.stderr)
    return 0
