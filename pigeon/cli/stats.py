"""``pigeon stats``: the arena database (leaderboard, players, blind duels, countries) or, with ``--matchlog``,
the bot's match log (pigeon play/duel/demo) as tables, and as CSV files with ``--export csv``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pigeon.cli._common import add_db, default_db

ARENA_TABLES = ("human_vs_bot", "ratings", "verdicts", "leaderboard", "players", "blind", "blind_games", "countries")


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("stats", help="arena statistics: leaderboard, players, blind duels, countries")
    add_db(s)
    s.add_argument("--matchlog", type=Path, default=None, metavar="PATH",
                   help="show the bot's match log (pigeon play/duel/demo) instead of the arena database")
    s.add_argument("--export", choices=["csv", "json"],
                   help="also write every table (and all rounds) as CSV files, or as one JSON file")
    s.add_argument(
        "--out", type=Path, default=Path("arena-stats"), help="folder for --export (default arena-stats)"
    )
    s.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    """Print the tables of the match log (``--matchlog``) or of the arena database; ``--export csv`` also writes
    each table, and every round, to ``--out``."""
    if args.matchlog is not None:
        tables, rounds, empty = _matchlog_tables(args.matchlog, bool(args.export))
    else:
        tables, rounds, empty = _arena_tables(args.db or default_db(), bool(args.export))
    _show(tables, empty, rounds if args.export == "csv" else None, Path(args.out))
    if args.export == "json":
        _write_json(Path(args.out), {**tables, **rounds})
    return 0


def _write_json(out: Path, tables: dict[str, list[dict]]) -> None:
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / "stats.json").write_text(json.dumps(tables, indent=1, allow_nan=False, default=str) + "\n")
    print(f"wrote {out / 'stats.json'}", file=sys.stderr)


def _arena_tables(db: Path, with_rounds: bool) -> tuple[dict[str, list[dict]], dict[str, list[dict]], str]:
    from arena import stats
    from arena.db import connect_readonly

    conn = connect_readonly(db)
    try:
        data = stats.all_stats(conn)
        rounds = stats.rounds_table(conn) if with_rounds else []
    finally:
        conn.close()
    return {name: data[name] for name in ARENA_TABLES}, {"rounds": rounds}, "no games yet"


def _matchlog_tables(path: Path, with_rounds: bool) -> tuple[dict[str, list[dict]], dict[str, list[dict]], str]:
    from bot import matchlog

    conn = matchlog.open_readonly(path)
    try:
        tables = {"bot_summary": matchlog.summary_stats(conn), "recent_matches": matchlog.recent_matches(conn),
                  "events": matchlog.event_counts(conn)}
        rounds = matchlog.rounds_table(conn) if with_rounds else []
    finally:
        conn.close()
    return tables, {"bot_rounds": rounds}, "none yet"


def _show(tables: dict[str, list[dict]], empty: str, rounds: dict[str, list[dict]] | None, out: Path) -> None:
    """Each table titled by its name (``_`` as a space); with ``rounds`` also every table and the rounds as
    ``out/<name>.csv``."""
    from rich.console import Console

    from pigeon.cli._render import print_table, write_csv

    console = Console()
    for name, rows in tables.items():
        title = name.replace("_", " ")
        print_table(rows, title=title, empty=f"{title}: {empty}", console=console)
    if rounds is not None:
        out.mkdir(parents=True, exist_ok=True)
        files = {**tables, **rounds}
        for name, rows in files.items():
            write_csv(out / f"{name}.csv", rows)
        print(f"wrote {len(files)} CSV files to {out}", file=sys.stderr)
