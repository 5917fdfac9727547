"""The bot plays the real arena (uvicorn on loopback, Debian Chromium): pin placement precision, captures,
match log, overlay predictions, fair play against a deliberately leaky server, and games back to back. A stub
guess callable stands in for the model (tests/test_bot_play.py runs a trained one; test_bot_duel.py duels)."""
from __future__ import annotations

import io
import urllib.request
from collections import Counter

import pytest
from arena_support import find_leaks, truth_patterns
from botkit import TARGETS, Harness, db_rows, fixed_guesses, start_arena, truth
from PIL import Image

from arena import views
from arena.demo_world import make_demo_world
from bot.config import BotConfig, PlayConfig
from bot.matchlog import MatchLog
from bot.play import ArenaGame, play_arena
from bot.sites.base import GuessResult
from model.geo.geography import haversine_km

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_demo_world(tmp_path_factory.mktemp("bot-world") / "world", n_locations=12)


@pytest.fixture(scope="module")
def arena(world, tmp_path_factory):
    srv = start_arena(world, tmp_path_factory.mktemp("bot-arena") / "arena.sqlite")
    yield srv
    srv.stop()


def test_classic_game_clicks_the_map_within_a_kilometre(browser, arena, tmp_path):
    seen: list = []
    h = Harness(browser, arena.url, tmp_path, fixed_guesses(TARGETS, seen))
    try:
        report = h.ctrl.play("classic", 4)
        gid = report.game_id
        assert h.guess_posts == Counter({1: 1, 2: 1, 3: 1, 4: 1})
        guesses = db_rows(arena, "SELECT n, lat, lon FROM guesses WHERE game_id=? ORDER BY n", gid)
        for g, (lat, lon), rec in zip(guesses, TARGETS, report.rounds):
            assert float(haversine_km(g["lat"], g["lon"], lat, lon)) < 1.0, (g, lat, lon)
            assert rec.placed.method == "map"
            assert float(haversine_km(g["lat"], g["lon"], rec.placed.placed_lat_deg, rec.placed.placed_lon_deg)) < 0.5
        # four headings per round, the whole picture at its own size, no two alike
        for pngs in seen:
            imgs = [Image.open(io.BytesIO(p)) for p in pngs]
            assert [im.size for im in imgs] == [(640, 400)] * 4 and len({im.tobytes() for im in imgs}) == 4
        rows = h.ml.conn.execute("SELECT round_n, truth_lat, truth_lon, score FROM rounds ORDER BY round_n").fetchall()
        for n, tlat, tlon, score in rows:
            t = truth(arena, gid, n)
            assert (tlat, tlon) == (t["lat"], t["lon"]) and score is not None
        # the overlay got the bot's belief for every round
        assert len(db_rows(arena, "SELECT n FROM predictions WHERE game_id=?", gid)) == 4
        assert report.summary.total_score == sum(r.result.score for r in report.rounds)
    finally:
        h.close()


RECORD_JS = """(() => {
  window.__seen = [];
  const f = window.fetch;
  window.fetch = async (...a) => {
    const r = await f(...a);
    // game data only: the world outline (every country's name) is static map data
    try { if (String(r.url).includes("/api/")) window.__seen.push(await r.clone().text()); } catch (e) {}
    return r;
  };
})();"""


def test_page_never_holds_the_truth_before_the_guess(browser, world, tmp_path, monkeypatch):
    """A deliberately leaky arena puts the answer into every game-state answer; the fair-play filter must
    strip it, so nothing the page (and so the bot) received before locking a round contains that round's
    location -- while after the lock the truth does arrive (the recorder works)."""
    real_view = views.game_view

    def leaky_view(c, g, seat, w, now):
        out = real_view(c, g, seat, w, now)
        if out["round"] is not None:
            r = c.execute("SELECT lat, lon, country FROM rounds WHERE game_id=? AND n=?",
                          (g["id"], g["current_round"])).fetchone()
            out["round"]["debug"] = {"lat": r["lat"], "lng": r["lon"], "countryCode": r["country"]}
        return out

    monkeypatch.setattr(views, "game_view", leaky_view)
    srv = start_arena(world, tmp_path / "leaky.sqlite", seed=9)
    snapshots: dict[int, list[str]] = {}
    try:
        h = Harness(browser, srv.url, tmp_path, None)
        h.ctx.add_init_script(RECORD_JS)

        def guess(views_png):
            n = h.site.observe().round_n
            snapshots[n] = h.site.page.evaluate("window.__seen.slice()")
            return GuessResult(0.0, 0.0)

        h.ctrl.guess = guess
        report = h.ctrl.play("classic", 3)
        gid = report.game_id
        for n in (1, 2, 3):
            t = truth(srv, gid, n)
            pats = truth_patterns(t["lat"], t["lon"], t["country"], t["town"], t["location_id"])
            # control: without the filter the same answer carries the truth
            with urllib.request.urlopen(f"{srv.url}/api/games/{gid}/rounds/{n}/result") as r:
                assert find_leaks(r.read(), pats)
            assert len(snapshots[n]) >= 3, "the recorder saw no responses"
            leaks = [w for body in snapshots[n] for w in find_leaks(body.encode(), pats)]
            assert not leaks, f"round {n}: the page held {leaks} before the guess"
        after = "".join(h.site.page.evaluate("window.__seen"))
        t3 = truth(srv, gid, 3)
        assert find_leaks(after.encode(), truth_patterns(t3["lat"], t3["lon"], t3["country"], t3["town"],
                                                          t3["location_id"]))
        assert h.site.fairplay.stripped_fields > 0
        h.close()
    finally:
        srv.stop()


def test_ten_rounds_in_a_row_over_two_games(browser, arena, tmp_path):
    """The soak in small (benchmarks/bench_bot.py --rounds 100 is the full one): games back to back in one
    browser, a fresh context each, every round played once and its result logged."""
    cfg = BotConfig(play=PlayConfig(screenshots_dir=str(tmp_path / "shots")))
    with MatchLog(tmp_path / "soak.sqlite") as ml:
        reports = [play_arena(browser, arena.url, fixed_guesses([(10.0, 10.0)] * 5), cfg, ArenaGame("classic", 5),
                              matchlog=ml) for _ in range(2)]
        assert ml.conn.execute("SELECT COUNT(*) FROM rounds WHERE score IS NOT NULL").fetchone()[0] == 10
        assert ml.conn.execute("SELECT COUNT(*) FROM events WHERE kind IN ('error', 'fatal')").fetchone()[0] == 0
    for rep in reports:
        assert [r.attempts for r in rep.rounds] == [1] * 5
        per_round = db_rows(arena, "SELECT n, COUNT(*) AS k FROM guesses WHERE game_id=? GROUP BY n", rep.game_id)
        assert [(r["n"], r["k"]) for r in per_round] == [(n, 1) for n in range(1, 6)]
