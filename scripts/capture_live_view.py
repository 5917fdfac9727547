"""Capture the live view of `pigeon play` for the docs: the demo checkpoint plays a real arena game (headless
Chromium, the demo holdout), the live view is drawn as in a terminal, and its last frame is saved as SVG and
as a PNG screenshot of that SVG (headless Chromium through Playwright).

    python scripts/capture_live_view.py --out docs/screenshots/live-play.png [--rounds 3] [--duel]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console

from arena import make_server
from bot.config import load_bot_config
from bot.driver import open_browser
from bot.matchlog import MatchLog
from bot.observer import ObservedLog
from bot.play import ArenaGame, play_arena
from bot.tournament import Entrant, duel_pair
from model.paths import project_path
from pigeon.cli._bot import load_seat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="PNG to write (the SVG goes next to it)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duel", action="store_true", help="a duel of the demo's head vs expected_score guess")
    ap.add_argument("--width", type=int, default=150, help="terminal columns")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    from pigeon.cli._live import LiveView

    cfg = load_bot_config(None, args.overrides)
    con = Console(record=True, width=args.width, force_terminal=True)
    with tempfile.TemporaryDirectory() as tmp:
        srv = make_server(project_path(cfg.demo.world), Path(tmp) / "arena.sqlite", split=cfg.demo.split)
        try:
            if args.duel:
                a, b = load_seat(None, cfg, "expected_score"), load_seat(None, cfg, "head")
                view = LiveView(con, "arena duel", args.rounds, enabled=True)
                with view:
                    obs = (view.seat("bot A (demo, expected_score)", a.countries),
                           view.seat("bot B (demo, head)", b.countries))
                    duel_pair(srv.url, (Entrant("pigeon-a", a.guess, a.model), Entrant("pigeon-b", b.guess, b.model)),
                              cfg, args.rounds, matchlog_path=Path(tmp) / "ml.sqlite", observers=obs)
            else:
                seat = load_seat(None, cfg)
                view = LiveView(con, "arena classic", args.rounds, countries=seat.countries, enabled=True)
                with MatchLog(Path(tmp) / "ml.sqlite") as ml, open_browser(cfg.browser) as browser, view:
                    obs = view.seat(f"bot (demo, {seat.model['guess_mode']})")
                    play_arena(browser, srv.url, seat.guess, cfg, ArenaGame("classic", args.rounds),
                               matchlog=ObservedLog(ml, obs), model=seat.model)
        finally:
            srv.stop()
    frame = Console(record=True, width=args.width, force_terminal=True, file=open("/dev/null", "w"))
    frame.print(view.renderable())
    svg = args.out.with_suffix(".svg")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.save_svg(str(svg), title="pigeon play")
    with open_browser(cfg.browser) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 600}, device_scale_factor=1)
        page.goto(svg.resolve().as_uri())
        page.locator("svg").screenshot(path=str(args.out))
    print(f"wrote {svg} and {args.out}")


if __name__ == "__main__":
    main()
