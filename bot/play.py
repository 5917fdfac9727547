"""Library entry points behind ``pigeon play``, ``pigeon duel`` and ``pigeon demo``.

Each function maps a ``BotConfig`` onto browsers, sites and controllers; the CLI only parses arguments and
prints. Browsers come from ``bot.driver``; model loading stays in ``bot.guessing`` (lazy torch).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
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
    def run(i: int) -> GameReport:
        game = ArenaGame("duel", rounds, join=None if i == 0 else "lobby", player_name=names[i])
        ml = MatchLog(matchlog_path) if matchlog_path else None
        try:
            with open_browser(cfg.browser) as browser:
                return play_arena(browser, url, guesses[i], cfg, game, matchlog=ml, model=models[i])
        finally:
            if ml is not None:
                ml.close()

    return run_two_seats(run, "duel-bot")


def run_two_seats(run: Callable[[int], Any], name: str) -> tuple[Any, Any]:
    """``run(0)`` and ``run(1)`` in two threads (Playwright's sync API wants one instance per thread) -> both
    results, after both finished; an exception of either is raised here, seat 0's first."""
    results: list[Any] = [None, None]

    def wrap(i: int) -> None:
        try:
            results[i] = run(i)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            results[i] = e

    threads = [threading.Thread(target=wrap, args=(i,), name=f"{name}-{i}") for i in (0, 1)]
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


@dataclass(frozen=True)
class GeoGuessrAuth:
    """How the bot signs in: the ``_ncfa`` ``cookie`` to add, or a saved Playwright ``storage_state`` file
    (``pigeon login``); ``secret`` is the cookie value either way, for the redactor."""

    secret: str
    cookie: str | None = None
    storage_state: Path | None = None


def _cookie(cfg: BotConfig) -> str:
    return geoguessr_auth(cfg).secret


def geoguessr_auth(cfg: BotConfig) -> GeoGuessrAuth:
    """``GEOGUESSR_NCFA`` when set, else the storage state ``pigeon login`` saved (refused unless only its owner
    can read it); ValueError naming both ways when neither is there."""
    cookie = os.environ.get(cfg.geoguessr.cookie_env, "").strip()
    if cookie:
        return GeoGuessrAuth(cookie, cookie=cookie)
    path = project_path(cfg.geoguessr.storage_state)
    if path.is_file():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ValueError(f"{path} holds your GeoGuessr login but is readable by others (mode {mode:o}): "
                             f"run `chmod 600 {path}` or `pigeon login` again")
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ValueError(f"{path} is not a Playwright storage state (run `pigeon login` again): {e}") from None
        ncfa = next((c.get("value", "") for c in state.get("cookies", []) if c.get("name") == "_ncfa"), "")
        if not ncfa:
            raise ValueError(f"{path} has no _ncfa cookie: the login did not finish; run `pigeon login` again")
        return GeoGuessrAuth(ncfa, storage_state=path)
    raise ValueError(f"set {cfg.geoguessr.cookie_env} to the value of your geoguessr.com `_ncfa` cookie "
                     "(browser devtools -> Application -> Cookies), or run `pigeon login` once; it is never "
                     "logged. See docs/bot.md")


def write_private_json(path: Path, data: Any) -> Path:
    """Write JSON readable by its owner only (0600 from the first byte: created so, then renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(data).encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def geoguessr_login(cfg: BotConfig, out: Path, timeout_s: float = 300.0,
                    on_page: Callable[[Any], None] | None = None) -> Path:
    """Open the sign-in page in a browser (headed unless the config says headless), wait (bounded) until the
    site has set the ``_ncfa`` cookie, and save the context's storage state to ``out`` with mode 0600.
    ``on_page`` sees the page first (tests fill the form there; a person signs in by hand)."""
    base = cfg.geoguessr.base_url.rstrip("/")
    with open_browser(cfg.browser) as browser:
        ctx = new_context(browser, cfg.browser)
        try:
            page = ctx.new_page()
            page.goto(base + "/signin")
            if on_page is not None:
                on_page(page)
            end = time.monotonic() + timeout_s
            while not any(c["name"] == "_ncfa" and c["value"] for c in ctx.cookies(base)):
                if time.monotonic() > end:
                    raise TimeoutError(f"no GeoGuessr login within {timeout_s:.0f} s (the _ncfa cookie never came)")
                page.wait_for_timeout(500)
            return write_private_json(out, ctx.storage_state())
        finally:
            close_context(ctx)


def _site(browser: Any, cfg: BotConfig, url: str | None) -> Any:
    from bot.sites.geoguessr import GeoGuessrSite

    auth = geoguessr_auth(cfg)
    extra = {"storage_state": str(auth.storage_state)} if auth.storage_state else {}
    return GeoGuessrSite(new_context(browser, cfg.browser, **extra), cfg.geoguessr, cfg.play, cookie=auth.cookie,
                         secret=auth.secret, url=url, timeout_ms=cfg.browser.timeout_ms)


def geoguessr_check(cfg: BotConfig, url: str | None) -> dict[str, str | None]:
    """The selector self-test against the live page (``url``, or a new classic game): entry -> matched selector."""
    secret = geoguessr_auth(cfg).secret
    with _redacted(secret), open_browser(cfg.browser, webgl=True) as browser:
        site = _site(browser, cfg, url)
        site.open_game(cfg.play.mode, 1)
        site.observe()
        return site.check()


def play_geoguessr(cfg: BotConfig, url: str | None, guess: GuessFn, model: dict | None = None, *,
                   observer: Any = None) -> GameReport:
    """Play one game on geoguessr.com (classic: ``url`` or a new game; challenge links; duels and team duels:
    the ``url`` of a joined game). ``geoguessr.record_dir`` set: scrubbed snapshots are recorded there.
    ``observer``: a ``bot.observer.GameObserver`` told of every guess and result (the live view)."""
    from bot.observer import ObservedLog

    secret = geoguessr_auth(cfg).secret
    with _redacted(secret), MatchLog(project_path(cfg.play.matchlog)) as ml, \
            open_browser(cfg.browser, webgl=True) as browser:
        site = _site(browser, cfg, url)
        ctrl = Controller(site, guess, cfg.play, matchlog=ObservedLog(ml, observer) if observer is not None else ml,
                          model=model, screenshot_dir=project_path(cfg.play.screenshots_dir))
        return ctrl.play(cfg.play.mode, cfg.play.rounds)
