"""``pigeon arena``: serve the local GeoGuessr-like arena (web game + JSON API)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from model.paths import data_dir
from pigeon.cli._common import add_db, default_db

log = logging.getLogger(__name__)

# The default human world: rendered by the world renderer with a seed the bot never trained on (the demo bot
# trains on data/worlds/demo48k, seed 1), thousands of places, 512 px views, every row playable.
HOLDOUT_SEED = 7
HOLDOUT_LOCATIONS = 3000
HOLDOUT_SIZE = 512


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("arena", help="serve the local GeoGuessr-like arena (web game + JSON API)")
    p.add_argument(
        "--world",
        action="append",
        type=Path,
        metavar="DIR",
        help="dataset folder to draw rounds from (repeat for several worlds); default: a held-out world "
        f"rendered once into <data>/arena/holdout-seed{HOLDOUT_SEED} (seed {HOLDOUT_SEED}, "
        f"{HOLDOUT_LOCATIONS} places, {HOLDOUT_SIZE} px; a few minutes on 2 cores)",
    )
    p.add_argument(
        "--bot-token",
        default=None,
        help="the operator's bot token bots must show to register (default $PIGEON_ARENA_BOT_TOKEN; "
        "without either, a random one is generated and printed)",
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


def _holdout_world() -> Path:
    """The default world, rendered on first use; a seed the bot's training never saw."""
    from world.build import default_workers, render_world
    from world.config import load_world_config

    root = data_dir() / "arena" / f"holdout-seed{HOLDOUT_SEED}"
    if not (root / "manifest.json").is_file():
        print(f"rendering the held-out arena world ({HOLDOUT_LOCATIONS} places, {HOLDOUT_SIZE} px, seed "
              f"{HOLDOUT_SEED}) into {root} once...", flush=True)
        cfg = load_world_config(None, [f"render.image_size={HOLDOUT_SIZE}"])
        render_world(root, HOLDOUT_SEED, HOLDOUT_LOCATIONS, cfg, workers=default_workers())
    return root


def run_arena(args: argparse.Namespace) -> int:
    from arena.app import build_server

    if args.port != 0 and not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be 0 or in 1..65535, got {args.port}")
    kinds = tuple(k.strip() for k in args.blind_opponents.split(",") if k.strip())
    worlds = args.world or [_holdout_world()]
    split = args.split if args.world else "all"  # the held-out world: every row (the bot saw none of them)
    db = args.db or default_db()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the arena has no TLS and players' tokens travel in clear text", args.host)
    import os

    from arena.app import BOT_TOKEN_ENV

    generated = not (args.bot_token or os.environ.get(BOT_TOKEN_ENV))
    server = build_server(worlds, db, args.host, args.port, split=split, blind_kinds=kinds, bot_token=args.bot_token)
    if generated:  # the operator needs it to start bots; printed once, to the operator's terminal only
        print(f"bot token (give it to your bots as ${BOT_TOKEN_ENV}): {server.service.bot_token}", flush=True)
    names = ", ".join(f"{w.name} ({len(w.pool)} locations)" for w in server.service.worlds.values())
    print(f"pigeon arena on {server.url}  worlds: {names}  db: {db}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.db.close()
    return 0
