"""``pigeon duel``: a duel in the arena, bot vs bot or bot vs a human who opens the link."""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from pigeon.cli._bot import add_bot_options, arena_url, bot_config, load_seat, matchlog_path, print_report
from pigeon.cli._common import add_run


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("duel", help="a duel in the arena: bot vs bot, or bot vs a human who opens the link")
    d.add_argument("--opponent", choices=["bot", "human"], default="bot",
                   help="who bot A plays against: a second bot (default) or a person who joins from the lobby")
    add_run(d, "bot A's run (default [demo] run)", required=False, type=Path)
    d.add_argument("--run-b", type=Path, default=None, help="bot B's run (default: the same as bot A)")
    d.add_argument("--mode-b", default=None, choices=["expected_score", "refined", "head"],
                   help="bot B's guess mode (default [play] guess_mode); the same run and mode on both seats "
                        "guess alike and every duel is a draw")
    d.add_argument("--url", default=None, help="a running arena (default: start one on loopback)")
    d.add_argument("--world", type=Path, default=None, help="dataset folder for the arena started here")
    add_bot_options(d, live=True)
    d.set_defaults(func=run_duel)


def run_duel(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bot.driver import open_browser
    from bot.matchlog import MatchLog
    from bot.observer import ObservedLog
    from bot.play import ArenaGame, play_arena
    from bot.tournament import Entrant, duel_pair
    from pigeon.cli._live import LiveView, live_enabled

    cfg = bot_config(args, ['play.mode="duel"'])
    ml_path = matchlog_path(cfg)
    rounds = args.rounds or 20
    a = load_seat(args.run, cfg)
    live = live_enabled(args.quiet)
    with arena_url(args, cfg) as url:
        if args.opponent == "bot":
            b = a if args.run_b is None and args.mode_b is None else load_seat(args.run_b or args.run, cfg, args.mode_b)
            if args.run_b is None and args.mode_b is None:
                print("note: both bots play the same run with the same guess mode, so they make the same guess "
                      "every round and the duel is a draw; pass --run-b or --mode-b for a real contest",
                      file=sys.stderr)
            names = (_label("A", a), _label("B", b))
            view = LiveView(Console(), "arena duel", rounds, enabled=live)
            with view if live else contextlib.nullcontext():
                obs = (view.seat(names[0], a.countries), view.seat(names[1], b.countries)) if live else (None, None)
                ra, rb = duel_pair(url, (Entrant("pigeon-bot-a", a.guess, a.model),
                                         Entrant("pigeon-bot-b", b.guess, b.model)),
                                   cfg, rounds, matchlog_path=ml_path, observers=obs)
            print_report(ra, f"duel: {names[0]}", ml_path)
            print_report(rb, f"duel: {names[1]}")
            return 0
        print(f"waiting up to {cfg.play.stall_timeout_s:.0f} s for a human: open {url}/ and join the duel "
              "from the lobby (or the link the bot logs)", file=sys.stderr)
        view = LiveView(Console(), "arena duel: bot vs human", rounds, enabled=live)
        with MatchLog(ml_path) as ml, open_browser(cfg.browser) as browser, (view if live else contextlib.nullcontext()):
            log = ObservedLog(ml, view.seat(_label("A", a), a.countries)) if live else ml
            report = play_arena(browser, url, a.guess, cfg, ArenaGame("duel", rounds), matchlog=log, model=a.model)
    print_report(report, "duel: bot vs human", ml_path)
    return 0


def _label(seat: str, s) -> str:
    return f"bot {seat} ({Path(s.model.get('run', '?')).name}, {s.model.get('guess_mode')})"
