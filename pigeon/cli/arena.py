"""``pigeon arena`` (serve the local game) and ``pigeon stats`` (arena statistics) verbs."""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

STATS_TABLES = ("leaderboard", "players", "blind", "blind_games", "countries")


def _data_dir() -> Path:
    from model.paths import data_dir

    return data_dir()


def default_db() -> Path:
    return _data_dir() / "arena" / "arena.sqlite"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("arena", help="serve the local GeoGuessr-like arena (web game + JSON API)")
    p.add_argument(
        "--world",
        action="append",
        type=Path,
        metavar="DIR",
        help="dataset folder to draw rounds from (repeat for several worlds); "
        "default: a synthetic demo world in <data>/arena/demo-world",
    )
    p.add_argument(
        "--split", default="test", help="dataset split to play: train, val, test or all (default test)"
    )
    p.add_argument("--db", type=Path, default=None, help="SQLite file (default <data>/arena/arena.sqlite)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (0 = any free port; the URL is printed)")
    p.add_argument(
        "--blind-opponents",
        default="bot,human",
        help="opponent kinds blind duels draw from, comma-separated (default bot,human)",
    )
    p.set_defaults(func=run_arena)

    s = sub.add_parser("stats", help="arena statistics: leaderboard, players, blind duels, countries")
    s.add_argument("--db", type=Path, default=None, help="SQLite file (default <data>/arena/arena.sqlite)")
    s.add_argument("--matchlog", type=Path, default=None, metavar="PATH",
                   help="show the bot's match log (pigeon play/duel/demo) instead of the arena database")
    s.add_argument("--export", choices=["csv"], help="also write every table (and all rounds) as CSV files")
    s.add_argument(
        "--out", type=Path, default=Path("arena-stats"), help="folder for --export (default arena-stats)"
    )
    s.set_defaults(func=run_stats)


def _demo_world() -> Path:
    from arena.demo_world import make_demo_world

    root = _data_dir() / "arena" / "demo-world"
    if not (root / "manifest.json").is_file():
        log.info("writing the synthetic demo world to %s", root)
        make_demo_world(root, n_locations=12, split="test")
    return root


def run_arena(args: argparse.Namespace) -> int:
    from arena.app import build_server

    if args.port != 0 and not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be 0 or in 1..65535, got {args.port}")
    kinds = tuple(k.strip() for k in args.blind_opponents.split(",") if k.strip())
    worlds = args.world or [_demo_world()]
    db = args.db or default_db()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the arena has no TLS and players' tokens travel in clear text", args.host)
    server = build_server(worlds, db, args.host, args.port, split=args.split, blind_kinds=kinds)
    names = ", ".join(f"{w.name} ({len(w.pool)} locations)" for w in server.service.worlds.values())
    print(f"pigeon arena on {server.url}  worlds: {names}  db: {db}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.db.close()
    return 0


def _write_csv(path: Path, rows: list[dict]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def _fmt(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def run_stats(args: argparse.Namespace) -> int:
    if getattr(args, "matchlog", None) is not None:
        from pigeon.cli.stats import run_matchlog_stats

        return run_matchlog_stats(args)
    from rich.console import Console
    from rich.table import Table

    from arena import stats
    from arena.db import connect_readonly

    conn = connect_readonly(args.db or default_db())
    try:
        data = stats.all_stats(conn)
        rounds = stats.rounds_table(conn) if args.export else []
    finally:
        conn.close()
    console = Console()
    for name in STATS_TABLES:
        rows = data[name]
        table = Table(title=name.replace("_", " "), title_justify="left")
        if not rows:
            console.print(f"[dim]{name.replace('_', ' ')}: no games yet[/dim]")
            continue
        for col in rows[0]:
            table.add_column(
                col.replace("_", " "), justify="right" if isinstance(rows[0][col], (int, float)) else "left"
            )
        for r in rows:
            table.add_row(*(_fmt(v) for v in r.values()))
        console.print(table)
    if args.export == "csv":
        args.out.mkdir(parents=True, exist_ok=True)
        for name in STATS_TABLES:
            _write_csv(args.out / f"{name}.csv", data[name])
        _write_csv(args.out / "rounds.csv", rounds)
        print(f"wrote {len(STATS_TABLES) + 1} CSV files to {args.out}", file=sys.stderr)
    return 0
