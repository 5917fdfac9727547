"""The arena played in real headless Chromium: a human classic game, a duel between two browser contexts and
the stream overlay. Screenshots land in a temporary folder; `make screenshots` writes them to docs/screenshots/
(PIGEON_SCREENSHOT_DIR), so a test run never rewrites tracked files."""

from __future__ import annotations

import math
import os
import tempfile
import random
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from arena_support import Client, make_leaky_world, start_solo_game
from arena import make_server, rules

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("PIGEON_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="pigeon-shots-"))
VIEWPORT = {"width": 1280, "height": 720}


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    root = tmp_path_factory.mktemp("arena-browser")
    srv = make_server(make_leaky_world(root / "world", n=10), root / "arena.sqlite", rng=random.Random(3))
    yield srv
    srv.stop()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def wait_panorama(page: Page) -> None:
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-qa=panorama]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )


def click_latlon(
    page: Page, lat: float, lon: float, centre=(20.0, 0.0), zoom: int = 1
) -> tuple[float, float]:
    """Click the guess map (still at its initial view) at (lat, lon) by Web Mercator projection; the point is
    first clamped into the visible part of the world. Returns the point aimed at."""
    lat, lon = min(70.0, max(-60.0, lat)), min(150.0, max(-150.0, lon))
    page.hover("[data-qa=guess-map]")  # the map grows under the pointer: measure it grown
    page.wait_for_timeout(450)

    def world_px(la: float, lo: float) -> tuple[float, float]:
        size = 256 * 2**zoom
        y = 0.5 - math.log(math.tan(math.pi / 4 + math.radians(la) / 2)) / (2 * math.pi)
        return size * (lo + 180) / 360, size * y

    inner = page.eval_on_selector(
        "[data-qa=guess-map]",
        "e => { const r = e.getBoundingClientRect(); return "
        "{x: r.x + e.clientLeft, y: r.y + e.clientTop, w: e.clientWidth, h: e.clientHeight}; }",
    )
    (cx, cy), (x, y) = world_px(*centre), world_px(lat, lon)
    page.mouse.click(inner["x"] + inner["w"] / 2 + x - cx, inner["y"] + inner["h"] / 2 + y - cy)
    return lat, lon


def truth(arena, gid: str, n: int) -> tuple[float, float]:
    with arena.db.read() as c:
        r = c.execute("SELECT lat, lon FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()
    return r["lat"], r["lon"]


def api_state(arena, page: Page, gid: str) -> dict:
    token = page.evaluate("() => JSON.parse(localStorage.getItem('pigeon.arena.player')).token")
    return Client(arena.url, token).ok("GET", f"/api/games/{gid}/summary")


def test_human_plays_a_classic_game(browser, arena):
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    gid = start_solo_game(page, arena.url, "Ada")
    pano = page.locator("[data-qa=panorama]")
    wait_panorama(page)
    first = pano.get_attribute("src")
    assert first.endswith("/rounds/1/views/0")
    page.click("[data-qa=rotate-right]")
    expect(pano).to_have_attribute("src", re.compile(r"/views/1$"))
    page.keyboard.press("ArrowLeft")
    expect(pano).to_have_attribute("src", re.compile(r"/views/0$"))
    page.keyboard.press("ArrowLeft")
    expect(pano).to_have_attribute("src", re.compile(r"/views/3$"))
    box = page.locator("#panorama").bounding_box()
    page.mouse.move(box["x"] + 1000, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 300, box["y"] + 210, steps=8)  # drag left by 0.6 of a heading: turn right
    page.mouse.up()
    expect(pano).to_have_attribute("src", re.compile(r"/views/0$"))
    expect(page.locator("[data-qa=perform-guess]")).to_be_disabled()

    offsets = [(3.0, 5.0), (-6.0, 10.0), (1.0, -2.0), (12.0, 25.0), (-2.0, 4.0)]  # degrees off the truth
    for n in range(1, 6):
        expect(page.locator("[data-qa=round-number]")).to_have_text(f"{n} / 5")
        wait_panorama(page)
        lat, lon = truth(arena, gid, n)
        target = click_latlon(page, lat + offsets[n - 1][0], lon + offsets[n - 1][1])
        expect(page.locator("[data-qa=perform-guess]")).to_be_enabled()
        if n == 1:
            page.wait_for_timeout(300)  # let the country layer paint
            shot(page, "arena-round.png")
            page.keyboard.press("Space")  # Space guesses, as in GeoGuessr
        else:
            page.click("[data-qa=perform-guess]")
        expect(page.locator("[data-qa=result-score]")).to_be_visible()
        res = next(r for r in api_state(arena, page, gid)["rounds"] if r["n"] == n)["guesses"][0]
        # the pin lands where the Mercator projection says (1 px is ~80 km at zoom 1)
        assert rules.score_guess(res["lat"], res["lon"], *target)[0] < 250
        expect(page.locator("[data-qa=result-score]")).to_have_text(
            re.compile(rf"^{res['score']:,} points?$")
        )
        expect(page.locator("[data-qa=result-distance]")).to_contain_text(f"{round(res['dist_km']):,} km")
        if n == 1:
            page.wait_for_timeout(900)  # progress bar animation
            shot(page, "arena-result.png")
        if n == 5:
            expect(page.locator("[data-qa=close-round-result]")).to_have_text("View summary")
        page.click("[data-qa=close-round-result]")

    expect(page.locator("[data-qa=game-summary]")).to_be_visible()
    total = api_state(arena, page, gid)["players"][0]["total_score"]
    expect(page.locator("[data-qa=summary-total]")).to_have_text(f"{total:,} / 25,000 points")
    expect(page.locator("#summary-table tbody tr")).to_have_count(6)
    page.wait_for_timeout(500)
    shot(page, "arena-summary.png")
    assert not errors, errors
    ctx.close()


def test_two_browser_contexts_play_a_duel(browser, arena):
    ca, cb = browser.new_context(viewport=VIEWPORT), browser.new_context(viewport=VIEWPORT)
    a, b = ca.new_page(), cb.new_page()
    a.goto(arena.url + "/")
    a.fill("[data-qa=player-name]", "Alice")
    a.click("[data-qa=create-player]")
    a.click("[data-qa=create-duel]")
    link = a.locator("[data-qa=share-link]")
    expect(link).to_be_visible()
    b.goto(link.input_value())
    b.fill("[data-qa=player-name]", "Bob")
    b.click("[data-qa=join-game]")
    gid = a.url.rsplit("/", 1)[1]
    for rnd in (1, 2):
        for p in (a, b):
            expect(p.locator("[data-qa=round-number]")).to_have_text(re.compile(rf"^{rnd} / "))
            wait_panorama(p)
        lat, lon = truth(arena, gid, rnd)
        click_latlon(a, lat + 4.0, lon - 6.0)
        a.click("[data-qa=perform-guess]")
        expect(a.locator("[data-qa=waiting-banner]")).to_contain_text("Waiting for your opponent")
        expect(b.locator("[data-qa=waiting-banner]")).to_have_text("Your opponent has guessed!")
        timer = b.locator("[data-qa=round-timer]")
        expect(timer).to_be_visible()
        left = int(timer.inner_text().split(":")[1])
        assert 0 < left <= 15
        click_latlon(b, lat - 9.0, lon + 14.0)
        if rnd == 2:
            b.wait_for_timeout(300)
            shot(b, "arena-duel.png")
        b.click("[data-qa=perform-guess]")
        for p in (a, b):
            expect(p.locator("[data-qa=result-score]")).to_be_visible()
        st = Client(arena.url).ok("GET", f"/api/games/{gid}")
        hp = {p["name"]: p["hp"] for p in st["players"]}
        expect(a.locator("[data-qa=result-hp-own]")).to_have_text(f"{hp['Alice']:,} HP")
        expect(b.locator("[data-qa=result-hp-own]")).to_have_text(f"{hp['Bob']:,} HP")
        if st["status"] == "finished":
            break
        a.click("[data-qa=close-round-result]")
        expect(a.locator("[data-qa=close-round-result]")).to_be_disabled()  # waits for Bob
        b.click("[data-qa=close-round-result]")
    for p in (a, b):
        expect(p.locator("[data-qa=hp-own]")).to_have_text(re.compile(r"^[\d,]+$"))
    assert sum(hp.values()) < 12000  # two rounds with different guesses dealt damage
    ca.close()
    cb.close()


def test_overlay_shows_hp_bot_predictions_and_results(browser, arena):
    human, bot = Client(arena.url).player("Streamer"), Client(arena.url).player("pigeon-bot", "bot")
    gid = human.ok("POST", "/api/games", {"mode": "duel", "rounds": 5})["id"]
    bot.ok("POST", f"/api/games/{gid}/join")
    rng = random.Random(0)
    centres = [
        (48.0, 8.0, 0.45),
        (40.0, -3.0, 0.25),
        (52.0, 20.0, 0.15),
        (45.0, 25.0, 0.1),
        (60.0, 15.0, 0.05),
    ]
    heat = []
    for lat, lon, w in centres:
        for _ in range(60):
            heat.append(
                [lat + rng.gauss(0, 2.5), lon + rng.gauss(0, 3.5), round(w * math.exp(-rng.random()), 4)]
            )
    bot.ok(
        "POST",
        "/api/predictions",
        {
            "game_id": gid,
            "round": 1,
            "heat": heat,
            "topk": [{"lat": la, "lon": lo, "p": p} for la, lo, p in centres],
        },
    )
    # the bot's belief is on air during the round, for whoever holds the overlay key (the human never does)
    human.ok("POST", f"/api/games/{gid}/rounds/1/guess", {"lat": 45.0, "lon": 5.0})
    link = bot.ok("GET", f"/api/games/{gid}/overlay-link")["url"]
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    page.goto(f"{arena.url}/overlay/{gid}")  # without the key: nothing
    expect(page.locator("#ov-round")).to_have_text("reconnecting…")
    page.goto(f"{arena.url}{link}")
    expect(page.locator("[data-qa=overlay-topk] .row")).to_have_count(5)
    expect(page.locator("[data-qa=overlay-hp-1]")).to_have_text("6,000 HP")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgba(0, 0, 0, 0)"
    page.wait_for_timeout(500)
    # for the screenshot only, show it over the round's panorama, as OBS would composite it over the game
    page.add_style_tag(
        content=f"body.overlay-page {{ background: url(/api/games/{gid}/rounds/1/views/0) center/cover "
        "!important; }"
    )
    page.wait_for_timeout(300)
    shot(page, "overlay.png")
    bot.ok("POST", f"/api/games/{gid}/rounds/1/guess", {"lat": 48.0, "lon": 8.0})
    result = page.locator("[data-qa=overlay-result]")
    expect(result).to_contain_text("Streamer")
    expect(result).to_contain_text("pigeon-bot")
    expect(page.locator("[data-qa=correct-location]")).to_have_count(1)
    ctx.close()
