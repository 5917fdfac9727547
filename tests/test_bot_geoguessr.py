"""The geoguessr.com adapter against local fixture pages (tests/geoguessr_fixture.py): the live site cannot be
reached from here, so these tests pin the adapter's logic -- cookie auth and redaction, selector fallbacks and
the --check self-test, clean captures at exact headings, Mercator map clicks, API fallbacks, duel HP/timer,
and fair play against pages whose every game-state answer carries the truth."""
from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from geoguessr_fixture import NCFA, FixtureServer
from PIL import Image

from bot.config import BrowserConfig, GeoGuessrConfig, PlayConfig
from bot.controller import BotError, Controller
from bot.driver import close_context, new_context
from bot.matchlog import MatchLog
from bot.sites.base import GuessResult, SiteError
from bot.sites.geoguessr import GeoGuessrSite
from model.geo.geography import haversine_km

pytestmark = pytest.mark.browser
RECORD_JS = """(() => {
  window.__seen = [];
  document.addEventListener("DOMContentLoaded", () => {
    const s = document.getElementById("__NEXT_DATA__");
    if (s) window.__seen.push(s.textContent);
  });
  const f = window.fetch;
  window.fetch = async (...a) => {
    const r = await f(...a);
    try { if (String(r.url).includes("/api/")) window.__seen.push(await r.clone().text()); } catch (e) {}
    return r;
  };
})();"""


@pytest.fixture(scope="module")
def fx():
    with FixtureServer(seed=3) as server:
        yield server


def make_site(browser, fx, url, cookie=NCFA, timeout_ms=5000, record=False, **play):
    ctx = new_context(browser, BrowserConfig())
    if record:
        ctx.add_init_script(RECORD_JS)
    cfg = GeoGuessrConfig(base_url=fx.url, game_server_url=fx.url + "/gs", tile_settle_ms=0)
    return GeoGuessrSite(ctx, cfg, PlayConfig(**play), cookie=cookie, url=url, timeout_ms=timeout_ms), ctx


def loc_patterns(lat: float, lng: float, pano_hex: str) -> list[re.Pattern]:
    texts = {repr(lat), repr(lng)} | {f"{v:.{d}f}" for v in (lat, lng) for d in (2, 3, 4)}
    pats = [re.compile(rf"(?<![0-9]){re.escape(t)}(?![0-9])") for t in texts]
    return pats + [re.compile(re.escape(pano_hex), re.IGNORECASE), re.compile(re.escape(bytes.fromhex(pano_hex).decode()))]


def leaks(bodies: list[str], pats: list[re.Pattern]) -> list[str]:
    return [p.pattern for b in bodies for p in pats if p.search(b)]


def test_classic_game_exact_headings_clean_captures_map_clicks_and_fair_play(browser, fx, tmp_path):
    game = fx.site.new_game(3)
    site, ctx = make_site(browser, fx, f"{fx.url}/game/{game.token}", record=True)
    targets = [(48.85, 2.35), (-33.9, 151.2), (64.1, -21.9)]
    seen_at_guess, captures, raw = {}, [], []

    def guess(views):
        n = len(captures) + 1
        captures.append(views)
        seen_at_guess[n] = site.page.evaluate("window.__seen.slice()")
        if n == 1:  # the same element with the UI showing, for comparison
            raw.append(Image.open(io.BytesIO(site.page.locator("#panorama-container").screenshot())).convert("RGB"))
        return GuessResult(*targets[n - 1])

    try:
        report = Controller(site, guess, site.play, screenshot_dir=tmp_path).play("classic", 3)
        assert [r.placed.method for r in report.rounds] == ["map"] * 3 and game.guess_posts == [1, 2, 3]
        for g, (lat, lon) in zip(game.guesses, targets):
            assert float(haversine_km(g["lat"], g["lng"], lat, lon)) < 1.0
        for n, (lat, lng, _, pano) in enumerate(game.locs, start=1):
            assert len(seen_at_guess[n]) >= 2
            assert not leaks(seen_at_guess[n], loc_patterns(lat, lng, pano)), f"round {n} truth seen before the guess"
            res = report.rounds[n - 1].result
            assert (res.truth_lat_deg, res.truth_lon_deg) == (lat, lng)  # read after the lock
        # pano ids reached the page only as aliases; the tile requests went out with the real ids
        assert fx.site.unknown_tiles == [] and len(fx.site.tile_requests) >= 3
        # four headings, 90 degrees apart, each a different picture; the panorama is turned back afterwards
        hook_heading = site.page.evaluate("window.__pigeonHook.sv.getPov().heading")
        assert hook_heading == pytest.approx(37.5)
        for views in captures:
            imgs = [Image.open(io.BytesIO(v)).convert("RGB") for v in views]
            assert len({im.tobytes() for im in imgs}) == 4 and imgs[0].size == (1024, 768)
            # where the guess map and Google's chrome sit, a capture shows only the panorama's flat sectors
            # (at most two colours); the same element with the UI showing has the map there
            assert len(imgs[0].crop((744, 548, 1024, 768)).getcolors(10_000)) <= 2
        assert len(raw[0].crop((744, 548, 1024, 768)).getcolors(10_000)) > 2
    finally:
        close_context(ctx)


def test_duel_reads_hp_and_timer_and_skips_the_delay_when_the_clock_runs(browser, fx, tmp_path):
    duel = fx.site.new_duel(max_rounds=2, opp_delay_s=0.5, countdown_s=8.0, intermission_s=1.0)
    site, ctx = make_site(browser, fx, f"{fx.url}/duels/{duel.id}", human_delay_s=(6.0, 6.0), fast_below_s=20.0,
                          poll_s=0.5)
    try:
        ctrl = Controller(site, lambda v: GuessResult(10.0, 10.0), site.play, screenshot_dir=tmp_path)
        report = ctrl.play("duel", 2)
        for rec in report.rounds:
            assert rec.placed is not None and rec.delay_ms < 4000  # cut short: the opponent's countdown started
            r = rec.result
            assert r.hp_own is not None and r.opponent_score is not None and r.multiplier == 1
        st = site.observe()
        assert (st.hp_own, st.hp_opponent) == (duel.hp["me"], duel.hp["opp"])
        assert report.summary.won == (duel.hp["me"] > duel.hp["opp"]) or report.summary.draw
        assert duel.guess_posts == [1, 2]
    finally:
        close_context(ctx)


def test_without_hooks_the_keyboard_turns_and_the_api_guesses(browser, fx, tmp_path):
    fx.site.no_hooks = True
    game = fx.site.new_game(2)
    site, ctx = make_site(browser, fx, f"{fx.url}/game/{game.token}")
    captures = []
    try:
        report = Controller(site, lambda v: captures.append(v) or GuessResult(1.0, 1.0), site.play,
                            screenshot_dir=tmp_path).play("classic", 2)
        assert [r.placed.method for r in report.rounds] == ["api", "api"] and game.guess_posts == [1, 2]
        assert all(len({bytes(v) for v in views}) == 4 for views in captures)
        assert [r.result.score for r in report.rounds] == [g["roundScoreInPoints"] for g in game.guesses]
    finally:
        fx.site.no_hooks = False
        close_context(ctx)


def test_selector_self_test_and_drift(browser, fx, tmp_path):
    game = fx.site.new_game(1)
    site, ctx = make_site(browser, fx, f"{fx.url}/game/{game.token}")
    site.open_game("classic", 1)
    site.observe()
    found = site.check()
    close_context(ctx)
    assert all(found.values()), found
    assert found["perform_guess"] == "[data-qa='perform-guess']"
    # the deploy renamed a hook: the class-prefix fallback takes over, and --check says which one matched
    fx.site.drop_data_qa = {"perform-guess"}
    site, ctx = make_site(browser, fx, f"{fx.url}/game/{game.token}")
    site.open_game("classic", 1)
    assert site.check()["perform_guess"] == "[class*='guess-map_guessButton__'] button"
    close_context(ctx)
    # a selector file whose only candidate is gone: the CLI self-test fails loudly
    strict = tmp_path / "strict.toml"
    text = Path("configs/selectors/geoguessr.toml").read_text()
    strict.write_text(re.sub(r"perform_guess = \[.*\]", "perform_guess = [\"[data-qa='perform-guess']\"]", text))
    # the CLI in a subprocess (Playwright's sync API wants its own thread; this one runs pytest-playwright's)
    env = {**os.environ, "GEOGUESSR_NCFA": NCFA}
    cmd = [sys.executable, "-m", "pigeon", "play", "--site", "geoguessr", "--check", "--url",
           f"{fx.url}/game/{game.token}", f'geoguessr.base_url="{fx.url}"', f'geoguessr.game_server_url="{fx.url}/gs"',
           f'geoguessr.selectors="{strict}"', "browser.timeout_ms=3000"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=120)
    assert r.returncode == 1 and "perform_guess not found" in r.stderr, r.stdout + r.stderr
    assert "MISSING" in r.stdout and NCFA not in r.stdout + r.stderr
    fx.site.drop_data_qa = set()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cookie_is_required_and_never_logged(browser, fx, tmp_path, caplog, monkeypatch):
    from pigeon.cli import main

    game = fx.site.new_game(2)
    site, ctx = make_site(browser, fx, f"{fx.url}/game/{game.token}", cookie=None)
    with pytest.raises(SiteError, match="401.*_ncfa cookie.*GEOGUESSR_NCFA"):
        site.open_game("classic", 2)
    close_context(ctx)
    monkeypatch.delenv("GEOGUESSR_NCFA", raising=False)
    assert main(["play", "--site", "geoguessr", "--check", "--url", f"{fx.url}/game/{game.token}"]) == 2

    caplog.set_level(logging.DEBUG)
    fx.site.drop_data_qa = {"perform-guess"}
    site, ctx = make_site(browser, fx, f"{fx.url}/game/{game.token}", timeout_ms=800, api_fallback=False,
                          max_attempts=1)
    try:
        with MatchLog(tmp_path / "ml.sqlite") as ml:
            ctrl = Controller(site, lambda v: GuessResult(1.0, 1.0), site.play, matchlog=ml,
                              screenshot_dir=tmp_path / "shots")
            # break the fallbacks too: the only Guess button loses its class
            site.sel.entries["perform_guess"] = ("[data-qa='perform-guess']",)
            with pytest.raises(BotError) as ei:
                ctrl.play("classic", 2)
        assert NCFA not in str(ei.value)
        assert ei.value.screenshot.is_file() and NCFA.encode() not in ei.value.screenshot.read_bytes()
        assert NCFA.encode() not in (tmp_path / "ml.sqlite").read_bytes()
    finally:
        fx.site.drop_data_qa = set()
        close_context(ctx)
    assert "perform_guess" in caplog.text and NCFA not in caplog.text


def test_redactor_scrubs_handlers_during_play(tmp_path):
    from bot.play import _redacted

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with _redacted(NCFA):
            logging.getLogger("bot.sites.geoguessr").warning("cookie=%s in a message", NCFA)
        logging.getLogger("bot.sites.geoguessr").warning("after: %s", "plain")
    finally:
        root.removeHandler(handler)
    out = stream.getvalue()
    assert NCFA not in out and "cookie=*** in a message" in out and "after: plain" in out
