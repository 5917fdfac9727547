"""The arena's stats page shows the statistics of `pigeon stats` (arena/matchstats.py): the API answers the same
numbers as the CLI's JSON on the same database, and the page draws the tables and plots in a real browser."""
from __future__ import annotations

import json

import pytest
from arena_support import Client

from arena import make_server
from arena.demo_world import make_demo_world

pytestmark = pytest.mark.browser


def _duel(a: Client, b: Client, points_a, points_b) -> str:
    gid = a.ok("POST", "/api/games", {"mode": "duel", "rounds": len(points_a)})["id"]
    b.ok("POST", f"/api/games/{gid}/join")
    for n, (pa, pb) in enumerate(zip(points_a, points_b), 1):
        a.ok("POST", f"/api/games/{gid}/rounds/{n}/guess", {"lat": pa[0], "lon": pa[1]})
        st = b.ok("POST", f"/api/games/{gid}/rounds/{n}/guess", {"lat": pb[0], "lon": pb[1]})
        if st["status"] == "finished":
            break
        a.ok("POST", f"/api/games/{gid}/next")
        b.ok("POST", f"/api/games/{gid}/next")
    return gid


def test_stats_page_shows_the_cli_statistics(browser, tmp_path, capsys):
    from pigeon.cli import main

    db = tmp_path / "arena.sqlite"
    srv = make_server(make_demo_world(tmp_path / "world", n_locations=10), db, split="all")
    try:
        a, b = Client(srv.url).player("alice"), Client(srv.url).player("bob")
        _duel(a, b, [(48.85, 2.35)] * 3, [(-33.9, 151.2)] * 3)
        _duel(b, a, [(35.7, 139.7)] * 3, [(40.4, -3.7)] * 3)
        api = Client(srv.url).ok("GET", "/api/stats/match")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(srv.url + "/stats")
            page.wait_for_selector("#m-countries tbody tr td", timeout=15000)
            page.wait_for_selector("#m-hp svg polyline", state="attached", timeout=15000)
            countries = page.locator("#m-countries tbody tr").count()
            hist_bars = page.locator("#m-hist svg rect").count()
            hp_panels = page.locator("#m-hp svg").count()
            rating_lines = page.locator("#m-ratings svg polyline").count()
            streak_rows = page.locator("#m-streaks tbody tr").count()
            page.locator("[data-qa=hp-curves]").scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "stats.png"), full_page=True)
        finally:
            page.close()
    finally:
        srv.stop()
    assert main(["stats", "--db", str(db), "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    for key in ("summary", "countries", "score_histogram", "opponents", "streaks", "matches", "hp_curves",
                "rating_history"):
        assert api[key] == cli[key], key      # the page's numbers are the CLI's numbers
    assert countries == len(api["countries"]) >= 2
    assert hist_bars == 2 * 10                 # two players, ten 500-point bins
    assert hp_panels == 2 and rating_lines == 2 and streak_rows == 2
    assert {c["player"] for c in api["hp_curves"]} == {"alice", "bob"}
