"""Recovery in the real arena: a page reload mid-round, a slow network (Chromium's emulated latency), a missing
primary selector, a vanished Guess button and the arena down for 25 s mid-game each end in a recovered round or a
clear error with a screenshot (and the game abandoned), and never in a second guess for a round (the page's guess
requests are counted, and the arena's database holds one guess per round)."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from botkit import TARGETS, Harness, db_rows, fixed_guesses, start_arena

from arena import make_server
from arena.demo_world import make_demo_world
from bot.controller import BotError
from bot.sites.base import GuessResult

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_demo_world(tmp_path_factory.mktemp("bot-world") / "world", n_locations=12)


@pytest.fixture(scope="module")
def arena(world, tmp_path_factory):
    srv = start_arena(world, tmp_path_factory.mktemp("bot-arena") / "arena.sqlite")
    yield srv
    srv.stop()


def test_page_reload_mid_round_recovers_without_a_double_guess(browser, arena, tmp_path):
    h = Harness(browser, arena.url, tmp_path, None)
    original_capture = h.site.capture_views
    calls = Counter()

    def capture(n, k):
        calls[n] += 1
        if n == 3 and calls[n] == 1:
            h.site.page.reload()  # reload just as the capture starts
        return original_capture(n, k)

    def guess(views_png):
        n = h.site.observe().round_n
        if n == 2:
            h.site.page.reload()  # reload between capture and guess
        return GuessResult(10.0 * n, 20.0)

    h.site.capture_views, h.ctrl.guess = capture, guess
    try:
        report = h.ctrl.play("classic", 3)
        assert [r.result is not None for r in report.rounds] == [True] * 3
        assert h.guess_posts == Counter({1: 1, 2: 1, 3: 1})
        got = db_rows(arena, "SELECT n, lat FROM guesses WHERE game_id=? ORDER BY n", report.game_id)
        assert [round(g["lat"]) for g in got] == [10, 20, 30]
    finally:
        h.close()


def test_slow_network_still_plays_every_round_once(browser, arena, tmp_path):
    h = Harness(browser, arena.url, tmp_path, fixed_guesses(TARGETS))
    cdp = h.ctx.new_cdp_session(h.site.page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 300, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        h.site.page.goto(arena.url + "/")
        ms = h.site.page.evaluate("async () => { const t = performance.now(); await fetch('/api/health');"
                                  " return performance.now() - t; }")
        assert ms >= 250, f"throttling not active ({ms:.0f} ms)"
        report = h.ctrl.play("classic", 2)
        assert [r.result is not None for r in report.rounds] == [True, True]
        assert h.guess_posts == Counter({1: 1, 2: 1})
    finally:
        h.close()


def test_missing_primary_hook_falls_back_to_the_next_selector(browser, arena, tmp_path):
    h = Harness(browser, arena.url, tmp_path, None)

    def guess(views_png):
        h.site.page.evaluate("document.querySelector('[data-qa=perform-guess]')?.removeAttribute('data-qa')")
        return GuessResult(1.0, 2.0)

    h.ctrl.guess = guess
    try:
        report = h.ctrl.play("classic", 2)
        assert [r.placed.method for r in report.rounds] == ["map", "map"]
        assert h.guess_posts == Counter({1: 1, 2: 1})
    finally:
        h.close()


@pytest.mark.parametrize("api_fallback", [False, True])
def test_guess_button_gone(browser, arena, tmp_path, api_fallback):
    """Without the API fallback: a clear error naming the selector, a screenshot, and no guess at all.
    With it: the round is played through the API, once."""
    h = Harness(browser, arena.url, tmp_path, None, timeout_ms=1500, max_attempts=2, api_fallback=api_fallback)

    def guess(views_png):
        h.site.page.evaluate("document.querySelector('#guess-btn')?.remove()")
        return GuessResult(1.0, 2.0)

    h.ctrl.guess = guess
    try:
        if not api_fallback:
            with pytest.raises(BotError, match=r"perform_guess.*not found.*2 attempts.*screenshot") as ei:
                h.ctrl.play("classic", 2)
            assert ei.value.screenshot.is_file() and ei.value.screenshot.stat().st_size > 1000
            assert sum(h.guess_posts.values()) == 0
            assert not [g for g in db_rows(arena, "SELECT * FROM guesses WHERE game_id=?", h.ctrl.game_id)
                        if not g["timed_out"]]
            # giving up gave the seat up: no game is left running for a bot that left
            assert "game abandoned" in str(ei.value)
            assert db_rows(arena, "SELECT status FROM games WHERE id=?", h.ctrl.game_id)[0]["status"] == "finished"
            status = h.ml.conn.execute("SELECT status FROM matches").fetchone()[0]
            assert status.startswith("error: BotError")
        else:
            report = h.ctrl.play("classic", 2)
            assert [r.placed.method for r in report.rounds] == ["api", "api"]
            assert h.guess_posts == Counter({1: 1, 2: 1})
    finally:
        h.close()


def test_arena_down_for_25_s_mid_game_the_bot_finishes_with_one_guess_per_round(browser, world, tmp_path):
    """The arena stops just before round 2's guess and comes back 25 s later on the same port and database: the
    bot retries with backoff, resumes round 2 and plays every round exactly once."""
    db = tmp_path / "arena.sqlite"
    srv = {"now": start_arena(world, db)}
    port, outage = srv["now"].port, {}

    def restart() -> None:
        time.sleep(25.0)
        srv["now"] = make_server(world, db, rng=random.Random(5), port=port)
        outage["up"] = time.monotonic()

    h = Harness(browser, srv["now"].url, tmp_path, None, timeout_ms=4000)
    landed: Counter = Counter()
    h.site.page.on("response", lambda r: r.request.method == "POST" and r.url.endswith("/guess") and r.ok
                   and landed.update([int(r.url.split("/")[-2])]))

    def guess(views_png):
        n = h.site.observe().round_n
        if n == 2 and "down" not in outage:
            srv["now"].stop()
            outage["down"] = time.monotonic()
            threading.Thread(target=restart, daemon=True).start()
        return GuessResult(10.0 * n, 20.0)

    h.ctrl.guess = guess
    try:
        report = h.ctrl.play("classic", 3)
        assert outage["up"] - outage["down"] >= 25.0
        assert [r.result is not None for r in report.rounds] == [True] * 3
        assert landed == Counter({1: 1, 2: 1, 3: 1})
        rows = db_rows(srv["now"], "SELECT n, lat FROM guesses WHERE game_id=? ORDER BY n", report.game_id)
        assert [(g["n"], round(g["lat"])) for g in rows] == [(1, 10), (2, 20), (3, 30)]
        events = [r[0] for r in h.ml.conn.execute("SELECT kind FROM events").fetchall()]
        assert "recovered" in events
    finally:
        h.close()
        srv["now"].stop()
