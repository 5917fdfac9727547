"""``pigeon duel``: a duel in the arena, bot vs bot or bot vs a human who opens the link."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pigeon.cli._bot import add_bot_options, arena_url, bot_config, load_guess, matchlog_path, print_report
from pigeon.cli._common import add_run


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("duel", help="a duel in the arena: bot vs bot, or bot vs a human who opens the link")
    d.add_argument("--opponent", choices=["bot", "human"], default="bot")
    add_run(d, "bot A's run (default [demo] run)", required=False, type=Path)
    d.add_argument("--run-b", type=Path, default=None, help="bot B's run (default: the same as bot A)")
    d.add_argument("--url", default=None, help="a running arena (default: start one on loopback)")
    d.add_argument("--world", type=Path, default=None, help="dataset folder for the arena started here")
    add_bot_options(d)
    d.set_defaults(func=run_duel)


def run_duel(args: argparse.Namespace) -> int:
    from bot.driver import open_browser
    from bot.matchlog import MatchLog
    from bot.play import ArenaGame, arena_duel, play_arena

    cfg = bot_config(args, ['play.mode="duel"'])
    ml_path = matchlog_path(cfg)
    rounds = args.rounds or 20
    guess_a, model_a = load_guess(args.run, cfg)
    with arena_url(args, cfg) as url:
        if args.opponent == "bot":
            guess_b, model_b = (guess_a, model_a) if args.run_b is None else load_guess(args.run_b, cfg)
            a, b = arena_duel(url, (guess_a, guess_b), cfg, rounds, matchlog_path=ml_path, models=(model_a, model_b))
            print_report(a, "duel: bot A", ml_path)
            print_report(b, "duel: bot B")
            return 0
        print(f"waiting up to {cfg.play.stall_timeout_s:.0f} s for a human: open {url}/ and join the duel "
              "from the lobby (or the link the bot logs)", file=sys.stderr)
        with MatchLog(ml_path) as ml, open_browser(cfg.browser) as browser:
            report = play_arena(browser, url, guess_a, cfg, ArenaGame("duel", rounds), matchlog=ml, model=model_a)
    print_report(report, "duel: bot vs human", ml_path)
    return 0
