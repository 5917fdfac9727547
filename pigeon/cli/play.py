"""``pigeon play``, ``pigeon duel`` and ``pigeon demo``: thin verbs over ``bot.play`` (rich only here)."""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser, rounds: bool = True) -> None:
    p.add_argument("--config", type=Path, default=None, help="bot config TOML (default configs/bot.toml)")
    if rounds:
        p.add_argument("--rounds", type=int, default=None, help="rounds to play (default [play] rounds)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--headless", dest="headless", action="store_true", default=None, help="no window (default)")
    g.add_argument("--headed", dest="headless", action="store_false", help="show the browser window")
    p.add_argument("--matchlog", type=Path, default=None, help="SQLite match log (default [play] matchlog)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. play.human_delay_s=[2,9]")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="let the bot play a game in the arena or on geoguessr.com")
    p.add_argument("--site", choices=["arena", "geoguessr"], default="arena")
    p.add_argument("--mode", choices=["classic", "duel"], default=None, help="default [play] mode")
    p.add_argument("--run", type=Path, default=None, help="trained run folder (default [demo] run)")
    p.add_argument("--url", default=None, help="arena: a running arena's URL (default: start one on loopback); "
                   "geoguessr: the game or duel URL to play")
    p.add_argument("--world", type=Path, default=None, help="arena started here: its dataset folder "
                   "(default [demo] world, split [demo] split)")
    p.add_argument("--join", default=None, help="arena duels: a game id to join, or 'lobby'")
    p.add_argument("--check", action="store_true", help="self-test the site's selectors on the live page and exit")
    _common(p)
    p.set_defaults(func=run_play)

    d = sub.add_parser("duel", help="a duel in the arena: bot vs bot, or bot vs a human who opens the link")
    d.add_argument("--opponent", choices=["bot", "human"], default="bot")
    d.add_argument("--run", type=Path, default=None, help="bot A's run (default [demo] run)")
    d.add_argument("--run-b", type=Path, default=None, help="bot B's run (default: the same as bot A)")
    d.add_argument("--url", default=None, help="a running arena (default: start one on loopback)")
    d.add_argument("--world", type=Path, default=None, help="dataset folder for the arena started here")
    _common(d)
    d.set_defaults(func=run_duel)

    m = sub.add_parser("demo", help="the demo: the shipped checkpoint plays 5 held-out rounds in the arena")
    _common(m, rounds=False)
    m.set_defaults(func=run_demo)


def _config(args: argparse.Namespace, extra: list[str] | None = None):
    from bot.config import load_bot_config

    ov = list(args.overrides)
    if getattr(args, "rounds", None) is not None:
        ov.append(f"play.rounds={args.rounds}")
    if getattr(args, "mode", None) is not None:
        ov.append(f'play.mode="{args.mode}"')
    if args.headless is not None:
        ov.append(f"browser.headless={'true' if args.headless else 'false'}")
    if args.matchlog is not None:
        ov.append(f'play.matchlog="{args.matchlog.resolve()}"')
    return load_bot_config(args.config, ov + (extra or []))


@contextlib.contextmanager
def _arena(args: argparse.Namespace, cfg: Any) -> Iterator[str]:
    """The arena URL: --url, or one started on loopback for the duration (world: --world or the demo's)."""
    if args.url:
        yield args.url.rstrip("/")
        return
    import tempfile

    from arena import make_server
    from model.paths import project_path

    world = args.world or project_path(cfg.demo.world)
    if not (Path(world) / "manifest.json").is_file():
        raise FileNotFoundError(f"no dataset at {world} (manifest.json missing): pass --world DIR or --url URL")
    with tempfile.TemporaryDirectory(prefix="pigeon-arena-") as tmp:
        srv = make_server(world, Path(tmp) / "arena.sqlite", split=cfg.demo.split)
        print(f"arena on {srv.url} (world {world}, split {cfg.demo.split})", file=sys.stderr)
        try:
            yield srv.url
        finally:
            srv.stop()


def _guess(run: Path | None, cfg: Any):
    from model.paths import project_path
    from bot.guessing import load_guess_fn
    from bot.matchlog import model_info

    run_dir = run or project_path(cfg.demo.run)
    guess, _ = load_guess_fn(run_dir, cfg.demo.device, cfg.play.guess_mode)
    return guess, model_info(run_dir)


def run_play(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.site == "geoguessr":
        from bot.play import geoguessr_check, play_geoguessr

        if args.check:
            return _print_check(geoguessr_check(cfg, args.url))
        guess, model = _guess(args.run, cfg)
        report = play_geoguessr(cfg, args.url, guess, model)
        print_report(report, f"geoguessr {cfg.play.mode}", _ml(cfg))
        return 0
    from bot.driver import open_browser
    from bot.matchlog import MatchLog
    from bot.play import ArenaGame, play_arena

    if args.check:
        return _check_arena(args, cfg)
    guess, model = _guess(args.run, cfg)
    with _arena(args, cfg) as url, MatchLog(_ml(cfg)) as ml, open_browser(cfg.browser) as browser:
        game = ArenaGame(cfg.play.mode, cfg.play.rounds, join=args.join)
        report = play_arena(browser, url, guess, cfg, game, matchlog=ml, model=model)
    print_report(report, f"arena {cfg.play.mode}", _ml(cfg))
    return 0


def _check_arena(args: argparse.Namespace, cfg: Any) -> int:
    from bot.driver import new_context, open_browser
    from bot.sites.arena import ArenaSite

    with _arena(args, cfg) as url, open_browser(cfg.browser) as browser:
        site = ArenaSite(new_context(browser, cfg.browser), url, cfg.play, timeout_ms=cfg.browser.timeout_ms)
        site.open_game("classic", 1)
        site.observe()
        found = site.check()
    return _print_check(found)


def _print_check(found: dict[str, str | None]) -> int:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="selector self-test", title_justify="left")
    t.add_column("entry")
    t.add_column("matched selector")
    for name, sel in found.items():
        t.add_row(name, sel or "[red]MISSING[/red]")
    Console().print(t)
    missing = [n for n, s in found.items() if s is None]
    if missing:
        print(f"selector self-test failed: {', '.join(missing)} not found on the page", file=sys.stderr)
    return 1 if missing else 0


def run_duel(args: argparse.Namespace) -> int:
    from bot.driver import open_browser
    from bot.matchlog import MatchLog
    from bot.play import ArenaGame, arena_duel, play_arena

    cfg = _config(args, ['play.mode="duel"'])
    rounds = args.rounds or 20
    guess_a, model_a = _guess(args.run, cfg)
    with _arena(args, cfg) as url:
        if args.opponent == "bot":
            guess_b, model_b = (guess_a, model_a) if args.run_b is None else _guess(args.run_b, cfg)
            a, b = arena_duel(url, (guess_a, guess_b), cfg, rounds, matchlog_path=_ml(cfg), models=(model_a, model_b))
            print_report(a, "duel: bot A", _ml(cfg))
            print_report(b, "duel: bot B")
            return 0
        print(f"waiting up to {cfg.play.stall_timeout_s:.0f} s for a human: open {url}/ and join the duel "
              "from the lobby (or the link the bot logs)", file=sys.stderr)
        with MatchLog(_ml(cfg)) as ml, open_browser(cfg.browser) as browser:
            report = play_arena(browser, url, guess_a, cfg, ArenaGame("duel", rounds), matchlog=ml, model=model_a)
    print_report(report, "duel: bot vs human", _ml(cfg))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from bot.play import run_demo as demo

    cfg = _config(args)
    report, ml_path, model = demo(cfg)
    print_report(report, f"pigeon demo: {cfg.demo.rounds} held-out rounds ({model.get('run')})", ml_path)
    return 0


def _ml(cfg: Any) -> Path:
    from model.paths import project_path

    return project_path(cfg.play.matchlog)


def print_report(report: Any, title: str, matchlog: Path | None = None) -> None:
    """Rich table of a game: per round truth, guess, distance, score, timings; the total underneath."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("round", "truth", "guess", "km", "score", "capture ms", "infer ms", "guess ms", "round ms"):
        t.add_column(col, justify="left" if col in ("truth", "guess") else "right")
    duel = any(r.result is not None and r.result.hp_own is not None for r in report.rounds)
    if duel:
        t.add_column("HP", justify="right")
    for r in report.rounds:
        res, g = r.result, r.guess
        truth = (f"{res.truth_lat_deg:.2f}, {res.truth_lon_deg:.2f} {res.truth_country or ''}"
                 if res and res.truth_lat_deg is not None else "-")
        row = [str(r.round_n), truth, f"{g.lat_deg:.2f}, {g.lon_deg:.2f}" if g else "no guess",
               f"{res.dist_km:,.1f}" if res and res.dist_km is not None else "-",
               f"{res.score:,}" if res and res.score is not None else "-",
               f"{r.capture_ms:.0f}", f"{r.infer_ms:.0f}", f"{r.guess_ms:.0f}", f"{r.total_ms:.0f}"]
        if duel:
            row.append(f"{res.hp_own} : {res.hp_opponent}" if res else "-")
        t.add_row(*row)
    s = report.summary
    t.add_section()
    times = [r.total_ms for r in report.rounds if r.placed is not None]
    total = ["total", f"{len(report.rounds)} rounds", "", "",
             f"{s.total_score:,}" if s is not None and s.total_score is not None else "-", "", "", "",
             f"median {sorted(times)[len(times) // 2]:.0f}" if times else "-"]
    if duel:
        total.append(f"{s.hp_own} : {s.hp_opponent} " + ("draw" if s.draw else "won" if s.won else "lost")
                     if s is not None else "-")
    t.add_row(*total)
    console = Console()
    console.print(t)
    if matchlog is not None:
        console.print(f"match log: {matchlog}  (pigeon stats --matchlog {matchlog})")
