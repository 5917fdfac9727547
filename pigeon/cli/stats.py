"""``pigeon stats``: statistics of the arena database or, with ``--matchlog``, of the bot's match log (pigeon
play/duel/demo): per player, against each opponent, streaks, per country (hit rate, mean score, most common wrong
guess), score distribution, duel HP per match and rating history (:mod:`pigeon.matchstats`), next to the source's
own tables (arena: human vs bot, ratings, verdicts, leaderboard, players, blind duels; match log: summary, recent
matches, events). ``--format`` prints tables, or writes CSV files, one JSON document (keys in docs/stats.md) or a
self-contained HTML page with plots."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pigeon.cli._common import add_db, default_db

ARENA_TABLES = ("human_vs_bot", "ratings", "verdicts", "leaderboard", "players", "blind", "blind_games", "countries")
FORMATS = ("table", "csv", "json", "html")
DEFAULT_OUT = {"csv": Path("stats-csv"), "html": Path("stats.html")}


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("stats", help="statistics of the arena database or the bot's match log",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    add_db(s)
    s.add_argument("--matchlog", type=Path, default=None, metavar="PATH",
                   help="read the bot's match log (pigeon play/duel/demo) instead of the arena database")
    s.add_argument("--format", choices=FORMATS, default=None,
                   help="table: print tables (default); csv: one CSV file per table (and every round) in the --out "
                        "folder; json: one JSON document to --out or stdout (keys: docs/stats.md); html: a "
                        "self-contained page with plots (--out, default stats.html)")
    s.add_argument("--export", choices=["csv", "json"],
                   help="older spelling: print the tables and also write CSV files (or stats.json) into --out")
    s.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="csv/--export: a folder (default stats-csv); json: a file (default stdout); html: a file "
                        "(default stats.html)")
    s.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    """Compute the statistics of the chosen source and show or write them in the chosen format."""
    from pigeon import matchstats

    fmt = args.format or ("csv" if args.export == "csv" else "table")
    if args.export and args.out is None:
        args.out = Path("arena-stats")  # the older spelling's default folder
    if args.matchlog is not None:
        stats, own, rounds, empty = _from_matchlog(args.matchlog)
    else:
        stats, own, rounds, empty = _from_arena(args.db or default_db())
    if fmt == "json":
        text = matchstats.to_json({**stats, "tables": own})
        if args.out is None:
            sys.stdout.write(text)
        else:
            _write(args.out, text)
        return 0
    if fmt == "html":
        _write(args.out or DEFAULT_OUT["html"], matchstats.render_html(stats, {k.replace("_", " "): v
                                                                               for k, v in own.items()}))
        return 0
    tables = {**own, **matchstats.tables(stats)}
    if fmt == "table" or args.export:
        _print(tables, empty)
    if fmt == "csv":
        _write_csv(args.out or DEFAULT_OUT["csv"], {**tables, **rounds})
    if args.export == "json":
        _write((args.out or DEFAULT_OUT["csv"]) / "stats.json", matchstats.to_json({**stats, "tables": own}))
    return 0


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def _country_lookup():
    """lats, lons -> ISO alpha-2 from the offline borders, or None (hit rates unknown) without the geodata."""
    from model.geo.geodata import load_or_none

    g = load_or_none("country hit rates in pigeon stats")
    return None if g is None else g.country_at


def _from_arena(db: Path) -> tuple[dict, dict[str, list[dict]], dict[str, list[dict]], str]:
    """(matchstats, the arena's own tables, every closed round, the empty-table word) of an arena database."""
    from arena import stats as arena_stats
    from arena.db import connect_readonly

    conn = connect_readonly(db)
    try:
        data = arena_stats.all_stats(conn)
        guesses = arena_stats.rounds_table(conn)  # closed rounds of public games only
        stats = arena_stats.match_stats(conn, source=f"arena database {db}", country_at=_country_lookup())
    finally:
        conn.close()
    own = {name: data[name] for name in ARENA_TABLES if name in data}
    return stats, own, {"rounds": guesses}, "no games yet"


def _from_matchlog(path: Path) -> tuple[dict, dict[str, list[dict]], dict[str, list[dict]], str]:
    """(matchstats, the match log's own tables, every logged round, the empty-table word) of a match log."""
    from bot import matchlog
    from pigeon import matchstats

    conn = matchlog.open_readonly(path)
    try:
        own = {"bot_summary": matchlog.summary_stats(conn), "recent_matches": matchlog.recent_matches(conn),
               "events": matchlog.event_counts(conn)}
        rounds = matchlog.rounds_table(conn)
        matches = [dict(r) for r in conn.execute("SELECT * FROM matches ORDER BY id")]
    finally:
        conn.close()
    rrows, mrows = matchstats.matchlog_rows(rounds, matches)
    stats = matchstats.compute(rrows, mrows, source=f"match log {path}", country_at=_country_lookup())
    return stats, own, {"bot_rounds": rounds}, "none yet"


def _print(tables: dict[str, list[dict[str, Any]]], empty: str) -> None:
    """Each table titled by its name (``_`` as a space)."""
    from rich.console import Console

    from pigeon.cli._render import print_table

    console = Console()
    for name, rows in tables.items():
        title = name.replace("_", " ")
        print_table(rows, title=title, empty=f"{title}: {empty}", console=console)


def _write_csv(out: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    from pigeon.cli._render import write_csv

    out.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        write_csv(out / f"{name}.csv", rows)
    print(f"wrote {len(tables)} CSV files to {out}", file=sys.stderr)
