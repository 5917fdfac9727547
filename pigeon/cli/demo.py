"""``pigeon demo``: the shipped checkpoint plays the held-out demo rounds in a local arena."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pigeon.cli._bot import add_bot_options, bot_config, print_report

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.controller import GameReport


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("demo", help="the demo: the shipped checkpoint plays 5 held-out rounds in the arena")
    add_bot_options(m, rounds=False)
    m.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    cfg = bot_config(args)
    report, ml_path, model = play_demo(cfg)
    print_report(report, f"pigeon demo: {cfg.demo.rounds} held-out rounds ({model.get('run')})", ml_path)
    return 0


def play_demo(cfg: BotConfig) -> tuple[GameReport, Path, dict]:
    """The demo: arena on loopback with the demo world's held-out split, the demo checkpoint, headless
    Chromium, one classic game of ``cfg.demo.rounds`` rounds. Returns (report, match log path, model info)."""
    from arena import make_server  # the arena and the bot meet here, at the top: neither imports the other
    from bot.guessing import load_guess_fn
    from bot.matchlog import MatchLog, model_info
    from bot.driver import open_browser
    from bot.play import ArenaGame, demo_paths, play_arena
    from model.paths import project_path

    run, world = demo_paths(cfg)
    guess, _ = load_guess_fn(run, cfg.demo.device, cfg.play.guess_mode, cfg.text_cue)
    model = {**model_info(run), "guess_mode": cfg.play.guess_mode}
    ml_path = project_path(cfg.play.matchlog)
    db = project_path(cfg.demo.arena_db)
    db.parent.mkdir(parents=True, exist_ok=True)
    srv = make_server(world, db, split=cfg.demo.split)
    try:
        with MatchLog(ml_path) as ml, open_browser(cfg.browser) as browser:
            report = play_arena(browser, srv.url, guess, cfg, ArenaGame("classic", cfg.demo.rounds),
                                matchlog=ml, model=model)
    finally:
        srv.stop()
    return report, ml_path, model
