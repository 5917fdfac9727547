"""Library entry points behind ``pigeon play``, ``pigeon duel`` and ``pigeon demo``.

Each function maps a ``BotConfig`` onto browsers, sites and controllers; the CLI only parses arguments and
prints. Browsers come from ``bot.driver``; model loading stays in ``bot.guessing`` (lazy torch).
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import BotConfig
from model.paths import project_path
from bot.controller import Controller, GameReport, GuessFn
from bot.driver import close_context, new_context, open_browser
from bot.matchlog import MatchLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArenaGame:
    """One game to play in the arena: create it (``join`` None), join a given id, or join from the lobby."""

    mode: str = "classic"
    rounds: int = 5
    join: str | None = None
    timer_s: float | None = None
    duel_options: dict | None = None
    player_name: str | None = None


def play_arena(browser: Any, url: str, guess: GuessFn, cfg: BotConfig, game: ArenaGame, *,
               matchlog: MatchLog | None = None, model: dict | None = None,
               on_site: Callable[[Any], None] | None = None) -> GameReport:
    """Play one arena game in a fresh context of ``browser``; ``on_site`` sees the site before play starts."""
    from bot.sites.arena import ArenaSite

    ctx = new_context(browser, cfg.browser)
    try:
        site = ArenaSite(ctx, url, cfg.play, join=game.join, timer_s=game.timer_s, duel_options=game.duel_options,
                         player_name=game.player_name, timeout_ms=cfg.browser.timeout_ms)
        if on_site is not None:
            on_site(site)
        ctrl = Controller(site, guess, cfg.play, matchlog=matchlog, model=model,
                          screenshot_dir=project_path(cfg.play.screenshots_dir))
        return ctrl.play(game.mode, game.rounds)
    finally:
        close_context(ctx)


def arena_duel(url: str, guesses: tuple[GuessFn, GuessFn], cfg: BotConfig, rounds: int, *,
               matchlog_path: Path | None = None, models: tuple[dict, dict] = ({}, {}),
               names: tuple[str, str] = ("pigeon-bot-a", "pigeon-bot-b")) -> tuple[GameReport, GameReport]:
    """Bot vs bot: two browsers in two threads (Playwright's sync API wants one instance per thread); bot A
    creates the duel, bot B joins it from the lobby."""
    results: list[Any] = [None, None]

    def run(i: int) -> None:
        game = ArenaGame("duel", rounds, join=None if i == 0 else "lobby", player_name=names[i])
        ml = MatchLog(matchlog_path) if matchlog_path else None
        try:
            with open_browser(cfg.browser) as browser:
                results[i] = play_arena(browser, url, guesses[i], cfg, game, matchlog=ml, model=models[i])
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            results[i] = e
        finally:
            if ml is not None:
                ml.close()

    threads = [threading.Thread(target=run, args=(i,), name=f"duel-bot-{i}") for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results[0], results[1]


def demo_paths(cfg: BotConfig) -> tuple[Path, Path]:
    """(run dir, world dir) of the demo; FileNotFoundError saying exactly what is missing and how to make it."""
    run, world = project_path(cfg.demo.run), project_path(cfg.demo.world)
    missing = []
    if not (world / "manifest.json").is_file():
        missing.append(f"the demo world {world} (no manifest.json): it ships with the repository "
                       "(checkpoints/demo/holdout); restore it with `git checkout -- checkpoints/demo` or rebuild "
                       "the demo with `scripts/make_demo_checkpoint.sh`")
    if not (run / "manifest.json").is_file():
        missing.append(f"the demo checkpoint {run} (no manifest.json): it ships with the repository; restore it "
                       "with `git checkout -- checkpoints/demo` or rebuild it with `scripts/make_demo_checkpoint.sh` "
                       "(about 30 min on 2 CPU cores)")
    if missing:
        raise FileNotFoundError("pigeon demo needs " + "; and ".join(missing) +
                                " (or point [demo] run/world in configs/bot.toml elsewhere)")
    return run, world


@contextlib.contextmanager
def _redacted(secret: str) -> Iterator[Any]:
    """Keep ``secret`` out of every log line while the block runs (a filter on each root handler)."""
    from bot.sites.geoguessr import Redactor

    red = Redactor(secret)
    handlers = list(logging.getLogger().handlers)
    for h in handlers:
        h.addFilter(red)
    try:
        yield red
    finally:
        for h in handlers:
            h.removeFilter(red)


def _cookie(cfg: BotConfig) -> str:
    cookie = os.environ.get(cfg.geoguessr.cookie_env, "").strip()
    if not cookie:
        raise ValueError(f"set {cfg.geoguessr.cookie_env} to the value of your geoguessr.com `_ncfa` cookie "
                         "(browser devtools -> Application -> Cookies); it is never logged. See docs/bot.md")
    return cookie


def geoguessr_check(cfg: BotConfig, url: str | None) -> dict[str, str | None]:
    """The selector self-test against the live page (``url``, or a new classic game): entry -> matched selector."""
    from bot.sites.geoguessr import GeoGuessrSite

    cookie = _cookie(cfg)
    with _redacted(cookie), open_browser(cfg.browser) as browser:
        site = GeoGuessrSite(new_context(browser, cfg.browser), cfg.geoguessr, cfg.play, cookie=cookie, url=url,
                             timeout_ms=cfg.browser.timeout_ms)
        site.open_game(cfg.play.mode, 1)
        site.observe()
        return site.check()


def play_geoguessr(cfg: BotConfig, url: str | None, guess: GuessFn, model: dict | None = None) -> GameReport:
    """Play one game on geoguessr.com (classic: ``url`` or a new game; duels: the ``url`` of a joined duel)."""
    from bot.sites.geoguessr import GeoGuessrSite

    cookie = _cookie(cfg)
    with _redacted(cookie), MatchLog(project_path(cfg.play.matchlog)) as ml, open_browser(cfg.browser) as browser:
        site = GeoGuessrSite(new_context(browser, cfg.browser), cfg.geoguessr, cfg.play, cookie=cookie, url=url,
                             timeout_ms=cfg.browser.timeout_ms)
        ctrl = Controller(site, guess, cfg.play, matchlog=ml, model=model,
                          screenshot_dir=project_path(cfg.play.screenshots_dir))
        return ctrl.play(cfg.play.mode, cfg.play.rounds)
