"""Helpers for the bot's browser tests: an arena harness that counts guess requests, stub guesses, DB reads."""
from __future__ import annotations

import random
import re
from collections import Counter

from arena import make_server
from bot.config import BrowserConfig, PlayConfig
from bot.controller import Controller
from bot.driver import close_context, new_context
from bot.matchlog import MatchLog
from bot.sites.arena import ArenaSite
from bot.sites.base import GuessResult

TARGETS = [(48.85, 2.35), (64.14, -21.9), (-0.5, 179.95), (-41.29, 174.78)]


def start_arena(world, db, seed=5):
    return make_server(world, db, rng=random.Random(seed))


def db_rows(arena, sql, *args):
    with arena.db.read() as c:
        return [dict(r) for r in c.execute(sql, args).fetchall()]


def truth(arena, gid, n):
    r = db_rows(arena, "SELECT r.lat, r.lon, r.country, r.town, r.location_id FROM rounds r "
                "WHERE r.game_id=? AND r.n=?", gid, n)[0]
    return r


class Harness:
    """One bot in a fresh context; counts the guess requests the page sends per round."""

    def __init__(self, browser, url, tmp_path, guess, timeout_ms=15_000, **play):
        self.ctx = new_context(browser, BrowserConfig())
        self.cfg = PlayConfig(**{"screenshots_dir": str(tmp_path / "shots"), **play})
        self.site = ArenaSite(self.ctx, url, self.cfg, timeout_ms=timeout_ms)
        self.guess_posts: Counter = Counter()
        self.site.page.on("request", self._count)
        self.ml = MatchLog(tmp_path / "matchlog.sqlite")
        self.ctrl = Controller(self.site, guess, self.cfg, matchlog=self.ml, screenshot_dir=tmp_path / "shots")

    def _count(self, req):
        m = re.search(r"/rounds/(\d+)/guess$", req.url)
        if m and req.method == "POST":
            self.guess_posts[int(m.group(1))] += 1

    def close(self):
        self.ml.close()
        close_context(self.ctx)


def fixed_guesses(points, seen=None):
    it = iter(points)

    def guess(views_png):
        if seen is not None:
            seen.append(views_png)
        lat, lon = next(it)
        return GuessResult(lat, lon, topk=[{"lat": lat, "lon": lon, "p": 0.6}], heat=[[lat, lon, 0.6]])

    return guess
