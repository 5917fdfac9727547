"""Nothing sent before a guess is locked may reveal the round: coordinates (many formats), country code or
name, town, location id / image file names. Checked on EVERY response Chromium receives while a human plays,
and on direct API calls by the player, the opponent and a spectator. The world's images carry EXIF text and
JPEG comments naming the place, so image bodies are scanned too."""

from __future__ import annotations

import random
import re

import pytest

from arena_support import Client, find_leaks, make_leaky_world, start_solo_game, truth_patterns
from arena import make_server

VENDOR = "/static/vendor/"


@pytest.fixture
def arena(tmp_path):
    srv = make_server(
        make_leaky_world(tmp_path / "world", n=10), tmp_path / "arena.sqlite", rng=random.Random(11)
    )
    yield srv
    srv.stop()


def round_patterns(arena, gid: str, n: int):
    with arena.db.read() as c:
        r = c.execute("SELECT * FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()
    return truth_patterns(r["lat"], r["lon"], r["country"], r["town"], r["location_id"])


def probe(c: Client, gid: str, n: int, views: int = 4) -> list[tuple[str, bytes]]:
    """Every GET a curious client could make about game ``gid`` during round ``n``: (url, headers + body)."""
    paths = [
        f"/api/games/{gid}",
        f"/api/games/{gid}/round",
        f"/api/games/{gid}/summary",
        f"/api/games/{gid}/overlay",
        f"/api/games/{gid}/rounds/{n}/result",
        f"/api/games/{gid}/rounds/{n + 1}/result",
        "/api/stats",
        "/api/stats/match",
        f"/api/games/{gid}/chat",
        "/api/leaderboard",
        "/api/worlds",
        "/openapi.json",
        "/",
        f"/play/{gid}",
        f"/overlay/{gid}",
        "/stats",
        f"/api/games/{gid}/rounds/{n + 1}/views/0",
    ]
    paths += [f"/api/games/{gid}/rounds/{n}/views/{k}" for k in range(views)]
    if c.token:
        paths += ["/api/lobby", "/api/me"]
    out = []
    for p in paths:
        status, body, headers = c.raw("GET", p)
        out.append((p, repr(sorted(headers.items())).encode() + b"\n" + body))
    return out


def assert_clean(items: list[tuple[str, bytes]], patterns, when: str) -> None:
    def scan(blob: bytes) -> list[str]:
        head = blob.split(b"\n", 1)[0]
        # two letters turn up by chance in compressed pixel data; text metadata is what images can leak
        pats = (
            [p for p in patterns if p[0] != "country code"]
            if re.search(b"image/jpeg", head, re.I)
            else patterns
        )
        return find_leaks(blob, pats)

    leaks = [(url, scan(body)) for url, body in items if VENDOR not in url]
    leaks = [(u, what) for u, what in leaks if what]
    assert not leaks, f"{when}: truth leaked in {leaks}"


def test_browser_game_leaks_nothing_before_each_guess(browser, arena):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    captured: list[tuple[str, bytes]] = []

    def on_response(resp) -> None:
        try:
            headers, body = resp.all_headers(), resp.body()
        except Exception:  # noqa: BLE001 - redirects, aborted requests and closing pages have no body
            return
        captured.append((resp.url, repr(sorted(headers.items())).encode() + b"\n" + body))

    ctx.on("response", on_response)
    page = ctx.new_page()
    gid = start_solo_game(page, arena.url, "Curious")
    token = page.evaluate("() => JSON.parse(localStorage.getItem('pigeon.arena.player')).token")
    me, spectator = Client(arena.url, token), Client(arena.url)
    checked = 0
    for n in range(1, 6):
        page.wait_for_function(
            f"() => document.querySelector('[data-qa=round-number]').textContent === '{n} / 5'"
        )
        page.wait_for_function("() => document.querySelector('[data-qa=panorama]').complete")
        for _ in range(3):  # look at every heading, as a player would, and let a few polls pass
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(250)
        pats = round_patterns(arena, gid, n)
        assert_clean(probe(me, gid, n) + probe(spectator, gid, n), pats, f"direct API, round {n}")
        before_guess = list(captured)
        assert_clean(before_guess, pats, f"browser, round {n}")
        checked += len(before_guess)
        box = page.locator("[data-qa=guess-map]").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
        page.click("[data-qa=perform-guess]")
        page.wait_for_selector("[data-qa=result-score]", state="visible")
        # the scan must be able to fail: after the guess the truth is legitimately on the wire
        assert any(find_leaks(b, pats) for _, b in captured[len(before_guess) :])
        page.click("[data-qa=close-round-result]")
    assert (
        checked > 40
        and any("/views/3" in u for u, _ in captured)
        and any("/play.js" in u for u, _ in captured)
    )
    ctx.close()


def test_duel_hides_the_round_from_both_players_until_it_ends(arena):
    a, b, spectator = Client(arena.url).player("a"), Client(arena.url).player("b", "bot"), Client(arena.url)
    gid = a.ok("POST", "/api/games", {"mode": "duel", "rounds": 3})["id"]
    b.ok("POST", f"/api/games/{gid}/join")
    for n in (1, 2):
        pats = round_patterns(arena, gid, n)

        def everyone(n: int = n) -> list[tuple[str, bytes]]:
            return probe(a, gid, n) + probe(b, gid, n) + probe(spectator, gid, n)

        assert_clean(everyone(), pats, f"round {n} before any guess")
        status, body, _ = a.raw("POST", f"/api/games/{gid}/rounds/{n}/guess", b'{"lat": 12.5, "lon": 33.25}')
        assert status == 200
        assert_clean([("guess response", body)] + everyone(), pats, f"round {n} after the first guess")
        b.ok(
            "POST",
            "/api/predictions",
            {
                "game_id": gid,
                "round": n,
                "topk": [{"lat": 1.0, "lon": 1.0, "p": 0.9}],
                "heat": [[1.0, 1.0, 0.9]],
            },
        )
        assert_clean(everyone(), pats, f"round {n} after predictions")
        status, body, _ = b.raw("POST", f"/api/games/{gid}/rounds/{n}/guess", b'{"lat": -20.0, "lon": -40.0}')
        assert status == 200 and find_leaks(body, pats)  # the round is over: now it may (must) show
        a.ok("POST", f"/api/games/{gid}/next")
        b.ok("POST", f"/api/games/{gid}/next")
