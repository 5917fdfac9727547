"""A whole blind game in real headless Chromium: a scripted person against the bot (ArenaSite + Controller with
stub guesses, in its own browser). Everything the person's browser receives before the verdict -- every response
body, DOM snapshots, local/session storage and cookies -- is scanned for the opponent's kind; the bot's guesses
must land at delays inside the recorded human guess times of the world, after its belief was posted. Also takes
the screenshots of docs/screenshots/ (PIGEON_SCREENSHOT_DIR; a temporary folder otherwise)."""

from __future__ import annotations

import os
import random
import re
import tempfile
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from arena_support import FakeClock, start_solo_game
from botkit import fixed_guesses
from arena import make_server
from arena.db import Database
from arena.demo_world import make_demo_world
from arena.games import GameService
from arena.worlds import load_worlds
from bot.config import BotConfig, BrowserConfig, PlayConfig
from bot.driver import open_browser
from bot.play import ArenaGame, play_arena

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("PIGEON_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="pigeon-shots-"))
HUMAN_TIMES = [6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 10.0, 11.0, 12.0]  # seconds: recorded human guesses
ROUNDS = 3


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


@pytest.fixture()
def arena(tmp_path):
    world = make_demo_world(tmp_path / "world", n_locations=24, size=(512, 512), split="test")
    db_path = tmp_path / "arena.sqlite"
    # recorded human rounds of this world, timed by a fake clock, before the server starts
    clock = FakeClock()
    svc = GameService(Database(db_path), load_worlds([world]), clock=clock, rng=random.Random(1))
    person, _ = svc.create_player("earlier-person")
    for t in HUMAN_TIMES:
        gid = svc.create_game(person, "classic", rounds=1)
        clock.advance(t)
        svc.guess(person, gid, 1, 10.0, 10.0)
    svc.db.close()
    srv = make_server(world, db_path, rng=random.Random(5), intermission_s=4.0)
    yield srv
    srv.stop()


def run_bot(url: str, out: dict) -> None:
    cfg = BotConfig(browser=BrowserConfig(), play=PlayConfig(poll_s=0.25, stall_timeout_s=60, screenshots_dir=str(
        Path(tempfile.mkdtemp()) / "shots")))
    points = [(48.0 + i, 10.0 - i) for i in range(ROUNDS)]
    try:
        with open_browser(cfg.browser) as browser:
            out["report"] = play_arena(browser, url, fixed_guesses(points), cfg,
                                       ArenaGame("duel", ROUNDS, join="lobby", player_name="pigeon-bot"))
    except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
        out["error"] = e


def click_map(page: Page, dx: float, dy: float) -> None:
    page.hover("[data-qa=guess-map]")
    page.wait_for_timeout(450)
    box = page.locator("[data-qa=guess-map]").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)


def test_blind_game_person_vs_bot_reveals_nothing_before_the_verdict(browser, arena):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    page = ctx.new_page()
    bodies: list[tuple[str, bytes]] = []

    def keep(resp):
        try:
            bodies.append((resp.url, resp.body()))
        except Exception:  # noqa: BLE001 - redirects and aborted loads have no body
            pass

    page.on("response", keep)
    page.goto(arena.url + "/")
    page.fill("[data-qa=player-name]", "Pat")
    page.click("[data-qa=create-player]")
    page.select_option("[data-qa=blind-rounds]", str(ROUNDS))
    page.click("[data-qa=create-blind]")
    page.wait_for_url(re.compile(r"/play/[0-9a-f]{16}$"))
    gid = page.url.rsplit("/", 1)[1]
    expect(page.locator("[data-qa=cancel-game]")).to_be_visible()
    bot_out: dict = {}
    bot = threading.Thread(target=run_bot, args=(arena.url, bot_out), name="blind-bot")
    bot.start()
    doms, storage = [], []
    for n in range(1, ROUNDS + 1):
        expect(page.locator("[data-qa=round-number]")).to_have_text(f"{n} / {ROUNDS}", timeout=60_000)
        page.wait_for_function("() => [...document.querySelectorAll('.pano-tile')].every((i) => i.complete)")
        page.keyboard.press("ArrowRight")  # look around a bit, like a person
        page.wait_for_timeout(1200)
        click_map(page, 20 * n, -10)
        expect(page.locator("[data-qa=perform-guess]")).to_be_enabled()
        if n == 1:
            shot(page, "arena-round.png")
        doms.append(page.content())
        page.click("[data-qa=perform-guess]")
        expect(page.locator("[data-qa=result-score]")).to_be_visible(timeout=30_000)
        doms.append(page.content())
        if n == 1:
            page.wait_for_timeout(900)
            shot(page, "arena-result.png")
        storage.append(page.evaluate("() => JSON.stringify([Object.entries(localStorage), "
                                     "Object.entries(sessionStorage), document.cookie])"))
        nxt = page.locator("[data-qa=close-round-result]")
        if n == ROUNDS or nxt.is_visible():  # the fixed intermission may already have started the next round
            try:
                nxt.click(timeout=3000)
            except Exception:  # noqa: BLE001 - the round started between the check and the click
                assert n < ROUNDS
    expect(page.locator("[data-qa=blind-verdict]")).to_be_visible(timeout=30_000)
    doms.append(page.content())
    shot(page, "arena-verdict.png")
    bot.join(timeout=90)
    assert "error" not in bot_out, bot_out.get("error")

    # ---- the scan: nothing before the verdict tells the opponent's kind ----------------------------------------
    with arena.db.read() as c:
        bot_id, bot_name = c.execute(
            "SELECT p.id, p.name FROM seats s JOIN players p ON p.id=s.player_id WHERE s.game_id=? AND s.seat=1",
            (gid,)).fetchone()
    assert bot_name == "pigeon-bot"
    everywhere = [bot_id.encode(), bot_name.encode(), os.environ["PIGEON_ARENA_BOT_TOKEN"].encode()]
    in_api = [b'"kind":"bot"', b'"kind": "bot"', b"opponent_kind", b"blind_kind", b'"topk"', b'"heat"',
              b"overlay-link", b"#key="]
    leaks = []
    for url, body in bodies:
        leaks += [(url, s) for s in everywhere if s in body]
        if "/api/" in url:
            leaks += [(url, s) for s in in_api if s in body]
            if "/overlay" in url:
                leaks.append((url, b"/overlay"))
    for i, text in enumerate(doms + storage):
        leaks += [(f"snapshot {i}", s) for s in everywhere + [b"Your opponent was"] if s in text.encode()]
    assert not leaks, leaks
    assert len([u for u, _ in bodies if "/api/games/" in u]) > 20  # the scan saw the game

    # ---- the bot's timing: inside the human distribution, belief posted before the guess ------------------------
    with arena.db.read() as c:
        rows = c.execute(
            "SELECT gu.n, gu.created - r.started AS delay, gu.created AS at, gu.timed_out FROM guesses gu "
            "JOIN rounds r ON r.game_id=gu.game_id AND r.n=gu.n WHERE gu.game_id=? AND gu.player_id=? ORDER BY gu.n",
            (gid, bot_id)).fetchall()
        beliefs = {r[0]: r[1] for r in c.execute(
            "SELECT n, created FROM predictions WHERE game_id=? AND player_id=?", (gid, bot_id))}
    assert len(rows) == ROUNDS and not any(r["timed_out"] for r in rows)
    for r in rows:
        assert min(HUMAN_TIMES) - 0.01 <= r["delay"] <= max(HUMAN_TIMES) + 0.01, dict(r)
        assert beliefs[r["n"]] <= r["at"]

    # ---- the verdict, then the reveal ------------------------------------------------------------------------------
    page.click("[data-qa=verdict-bot]")
    expect(page.locator("[data-qa=blind-reveal]")).to_have_text("Your opponent was the bot. You were right.")
    page.wait_for_timeout(600)
    shot(page, "arena-reveal.png")
    page.goto(arena.url + "/stats")
    expect(page.locator("[data-qa=human-vs-bot] tbody tr")).to_have_count(5)
    expect(page.locator("[data-qa=verdicts]")).to_contain_text("opponent was a bot")
    expect(page.locator("[data-qa=ratings]")).to_contain_text("pigeon-bot")
    page.wait_for_timeout(300)
    shot(page, "arena-stats.png")
    ctx.close()


def test_map_labels_and_phone_layout(browser, arena):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    page = ctx.new_page()
    page.goto(arena.url + "/")
    page.fill("[data-qa=player-name]", "Lee")
    page.click("[data-qa=create-player]")
    expect(page.locator("[data-qa=world-select] option")).to_have_count(1)
    page.click("[data-qa=start-game-button]")
    page.wait_for_url(re.compile(r"/play/[0-9a-f]{16}$"))
    page.click("[data-qa=pin-map]")  # pinned large: stays grown without the pointer
    page.mouse.move(10, 10)
    page.wait_for_timeout(500)
    box = page.locator("[data-qa=guess-map]").bounding_box()
    assert box["width"] > 700 and box["height"] > 400
    gx, gy = box["x"] + box["width"] * 0.52, box["y"] + box["height"] * 0.30  # over Europe at zoom 1
    page.mouse.move(gx, gy)
    labels = page.locator(".town-label span")
    for _ in range(14):  # wheel in over Europe until the labels come (zoom 4 and more)
        if labels.count() > 5:
            break
        page.mouse.move(gx, gy)
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(600)
    expect(labels.first).to_be_visible(timeout=10_000)
    page.wait_for_timeout(600)
    shot(page, "arena-map-labels.png")
    ctx.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                                has_touch=True)
    page = phone.new_page()
    start_solo_game(page, arena.url, "Mo")
    page.wait_for_function("() => [...document.querySelectorAll('.pano-tile')].every((i) => i.complete)")
    page.wait_for_timeout(500)
    boxes = {q: page.locator(f"[data-qa={q}]").bounding_box() for q in
             ("guess-panel", "rotate-left", "rotate-right", "compass", "pano-zoom-in", "round-number")}

    def overlap(a, b):
        return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"] or
                    a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])

    names = list(boxes)
    bad = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if overlap(boxes[a], boxes[b])]
    assert not bad, bad
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= 390 and b["y"] + b["height"] <= 844 for b in boxes.values())
    shot(page, "arena-phone.png")
    phone.close()
