"""``pigeon play``: the bot plays a game in the arena or on geoguessr.com (or self-tests the site's selectors)."""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pigeon.cli._bot import add_bot_options, arena_url, bot_config, load_seat, matchlog_path, print_report
from pigeon.cli._common import add_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="let the bot play a game in the arena or on geoguessr.com")
    p.add_argument("--site", choices=["arena", "geoguessr"], default="arena")
    p.add_argument("--mode", choices=["classic", "duel"], default=None, help="default [play] mode")
    add_run(p, "trained run folder (default [demo] run)", required=False, type=Path)
    p.add_argument("--url", default=None, help="arena: a running arena's URL (default: start one on loopback); "
                   "geoguessr: the game or duel URL to play")
    p.add_argument("--world", type=Path, default=None, help="arena started here: its dataset folder "
                   "(default [demo] world, split [demo] split)")
    p.add_argument("--join", default=None, help="arena duels: a game id to join, or 'lobby'")
    p.add_argument("--check", action="store_true", help="self-test the site's selectors on the live page and exit")
    p.add_argument("--record", type=Path, default=None, metavar="DIR",
                   help="geoguessr: save scrubbed DOM + JSON snapshots of every state change to DIR (test fixtures)")
    add_bot_options(p, live=True)
    p.set_defaults(func=run_play)


def run_play(args: argparse.Namespace) -> int:
    """Play (or self-test); a bot that gives up prints one line and exits 1 (the game abandoned where it can)."""
    from playwright.sync_api import Error as PlaywrightError

    from bot.controller import BotError
    from bot.sites.base import SiteError

    try:
        return _play(args)
    except (BotError, SiteError, PlaywrightError) as e:
        print(f"pigeon play: gave up: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}",
              file=sys.stderr)
        return 1


def _play(args: argparse.Namespace) -> int:
    extra = [f'geoguessr.record_dir="{args.record.resolve()}"'] if args.record is not None else []
    if args.record is not None and args.site != "geoguessr":
        raise ValueError("--record is for --site geoguessr (the arena's pages are in this repository)")
    cfg = bot_config(args, extra)
    if args.site == "geoguessr":
        from bot.play import geoguessr_check, play_geoguessr

        if args.check:
            return _print_check(geoguessr_check(cfg, args.url))
        seat = load_seat(args.run, cfg)
        with _live(args, f"geoguessr {cfg.play.mode}", cfg.play.rounds, seat) as (_view, observer):
            report = play_geoguessr(cfg, args.url, seat.guess, seat.model, observer=observer)
        print_report(report, f"geoguessr {cfg.play.mode}", matchlog_path(cfg))
        return 0
    from bot.driver import open_browser
    from bot.matchlog import MatchLog
    from bot.play import ArenaGame, play_arena

    if args.check:
        return _check_arena(args, cfg)
    from bot.observer import ObservedLog

    seat = load_seat(args.run, cfg)
    with arena_url(args, cfg) as url, MatchLog(matchlog_path(cfg)) as ml, open_browser(cfg.browser) as browser, \
            _live(args, f"arena {cfg.play.mode}", cfg.play.rounds, seat) as (_view, observer):
        game = ArenaGame(cfg.play.mode, cfg.play.rounds, join=args.join)
        log = ObservedLog(ml, observer) if observer is not None else ml
        report = play_arena(browser, url, seat.guess, cfg, game, matchlog=log, model=seat.model)
    print_report(report, f"arena {cfg.play.mode}", matchlog_path(cfg))
    return 0


@contextlib.contextmanager
def _live(args: argparse.Namespace, title: str, rounds: int, seat: Any) -> Iterator[tuple[Any, Any]]:
    """(live view, its seat's observer) while the game runs on a terminal; (None, None) with --quiet or when
    stdout is not a terminal."""
    from rich.console import Console

    from pigeon.cli._live import LiveView, live_enabled

    if not live_enabled(args.quiet):
        yield None, None
        return
    with LiveView(Console(), title, rounds, countries=seat.countries) as view:
        yield view, view.seat(f"bot ({Path(seat.model.get('run', '?')).name}, {seat.model.get('guess_mode')})")


def _check_arena(args: argparse.Namespace, cfg: Any) -> int:
    from bot.driver import new_context, open_browser
    from bot.sites.arena import ArenaSite

    with arena_url(args, cfg) as url, open_browser(cfg.browser) as browser:
        site = ArenaSite(new_context(browser, cfg.browser), url, cfg.play, timeout_ms=cfg.browser.timeout_ms)
        site.open_game("classic", 1)
        site.observe()
        found = site.check()
    return _print_check(found)


def _print_check(found: dict[str, str | None]) -> int:
    from rich.markup import escape

    from pigeon.cli._render import print_table

    # selectors such as [data-qa=panorama] look like rich markup: escape them, or the column prints empty
    print_table([(escape(name), escape(sel) if sel else "[red]MISSING[/red]") for name, sel in found.items()],
                ["entry", "matched selector"],
                title="selector self-test", right=())
    missing = [n for n, s in found.items() if s is None]
    if missing:
        print(f"selector self-test failed: {', '.join(missing)} not found on the page", file=sys.stderr)
    return 1 if missing else 0
