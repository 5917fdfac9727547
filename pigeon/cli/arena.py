"""``pigeon arena``: serve the local GeoGuessr-like arena (web game + JSON API)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from model.paths import data_dir
from pigeon.cli._common import add_db, default_db

log = logging.getLogger(__name__)


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
    add_db(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (0 = any free port; the URL is printed)")
    p.add_argument(
        "--blind-opponents",
        default="bot,human",
        help="opponent kinds blind duels draw from, comma-separated (default bot,human)",
    )
    p.set_defaults(func=run_arena)


def _demo_world() -> Path:
    from arena.demo_world import make_demo_world

    root = data_dir() / "arena" / "demo-world"
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
