"""Recovery in the real arena: a page reload mid-round, a slow network (Chromium's emulated latency), a missing
primary selector and a vanished Guess button each end in a recovered round or a clear error with a screenshot,
and never in a second guess for a round (the page's guess requests are counted)."""
from __future__ import annotations

from collections import Counter

import pytest
from botkit import TARGETS, Harness, db_rows, fixed_guesses, start_arena

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
            assert not db_rows(arena, "SELECT * FROM guesses WHERE game_id=?", h.ctrl.game_id)
            status = h.ml.conn.execute("SELECT status FROM matches").fetchone()[0]
            assert status.startswith("error: BotError")
        else:
            report = h.ctrl.play("classic", 2)
            assert [r.placed.method for r in report.rounds] == ["api", "api"]
            assert h.guess_posts == Counter({1: 1, 2: 1})
    finally:
        h.close()
