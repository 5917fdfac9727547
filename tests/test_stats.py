"""Match statistics (arena/matchstats.py, also importable as pigeon.matchstats) and ``pigeon stats --format table|csv|json|html``: pure tables on
hand-built rows, and the CLI on a real match log written by bot.matchlog.MatchLog (SQLite on disk)."""
from __future__ import annotations

import csv
import json
import re
from types import SimpleNamespace as NS

import pytest

from pigeon import matchstats as ms


def _round(match, n, player="bot", opp="alice", score=3000, opp_score=2000, tc="IT", gc="IT", **kw):
    return {"match": match, "round": n, "player": player, "opponent": opp, "mode": "duel", "time": f"{match}-{n}",
            "true_lat": 45.0, "true_lon": 9.0, "true_country": tc, "guess_lat": 45.0, "guess_lon": 9.0,
            "guess_country": gc, "dist_km": 100.0 * n, "score": score, "multiplier": 1.0, "hp_before": None,
            "hp_after": None, "opponent_hp_before": None, "opponent_hp_after": None, "opponent_score": opp_score, **kw}


def _match(match, result, player="bot", opp="alice"):
    return {"match": match, "player": player, "opponent": opp, "mode": "duel", "site": "arena", "time": match,
            "rounds": 1, "total_score": None, "result": result, "hp_end": None, "opponent_hp_end": None}


def test_country_table_hit_rate_and_most_common_wrong_guess():
    rounds = [_round("a", 1, tc="IT", gc="IT", score=5000), _round("a", 2, tc="IT", gc="FR", score=1000),
              _round("a", 3, tc="IT", gc="FR", score=2000), _round("a", 4, tc="IT", gc="", score=0),
              _round("a", 5, tc="FR", gc=None, score=4000)]
    rows = {r["country"]: r for r in ms.country_table(rounds)}
    it = rows["IT"]
    assert it["rounds"] == 4 and it["hit_rate"] == pytest.approx(0.25)
    assert it["mean_score"] == pytest.approx(2000.0) and (it["wrong_guess"], it["wrong_guess_n"]) == ("FR", 2)
    assert rows["FR"]["hit_rate"] is None and rows["FR"]["wrong_guess"] is None  # guess country unknown
    assert list(rows) == ["IT", "FR"]  # most rounds first


def test_guess_countries_come_from_the_lookup_when_rows_lack_them():
    rounds = [_round("a", 1, gc=None, guess_lat=48.0, guess_lon=2.0), _round("a", 2, gc=None)]
    stats = ms.compute(rounds, country_at=lambda lats, lons: ["FR" if la > 46 else "IT" for la in lats])
    assert stats["summary"][0]["country_hit_rate"] == pytest.approx(0.5)
    assert stats["countries"][0]["wrong_guess"] == "FR"
    assert ms.compute(rounds)["summary"][0]["country_hit_rate"] is None  # no lookup, no hit rate


def test_streaks_and_opponents():
    matches = [_match(m, r) for m, r in zip("abcdefg", ["win", "win", "loss", "win", "win", "win", "loss"])]
    matches.append(_match("h", "draw", opp="carol"))
    rounds = [_round(m["match"], 1, score=s, opp_score=o, opp=m["opponent"])
              for m, s, o in zip(matches, [5000, 4500, 100, 4200, 4100, 5000, 5000, 2500],
                                 [0, 0, 4000, 1000, 1000, 1000, 5000, 2500])]
    streak = ms.streak_table(rounds, matches)[0]
    assert (streak["longest_win_streak"], streak["longest_loss_streak"], streak["current_streak"]) == (3, 1, 0)
    assert streak["longest_4k_streak"] == 4 and streak["longest_5k_streak"] == 2
    assert ms._streaks(["win", "loss", "loss"]) == (1, 2, -2) and ms._streaks([]) == (0, 0, 0)
    opp = {o["opponent"]: o for o in ms.opponent_table(rounds, matches)}
    assert (opp["alice"]["wins"], opp["alice"]["losses"], opp["alice"]["matches"]) == (5, 2, 7)
    assert opp["alice"]["mean_score_diff"] == pytest.approx((5000 + 4500 - 3900 + 3200 + 3100 + 4000 + 0) / 7,
                                                            abs=0.05)
    assert opp["carol"]["draws"] == 1 and opp["carol"]["mean_score_diff"] == pytest.approx(0.0)


def test_histogram_bins_include_5000_in_the_last_bin():
    h = ms.score_histogram([_round("a", i, score=s) for i, s in enumerate([0, 499, 500, 4999, 5000])])
    assert h["edges"][0] == 0 and h["edges"][-1] == 5000
    assert h["counts"]["bot"] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]


def test_arena_rows_hp_from_initial_hp_and_damage_and_ratings():
    guesses = [{"game_id": "g1", "mode": "duel", "round": n, "seat": seat, "player": name, "country": "IT",
                "true_lat": 45.0, "true_lon": 9.0, "guess_lat": 45.0, "guess_lon": 9.0, "dist_km": 1.0,
                "score": score, "damage": dmg, "multiplier": 1.0, "closed": 100.0 + n}
               for n, seat, name, score, dmg in [(1, 0, "bot", 5000, 0), (1, 1, "ann", 3000, 2000),
                                                 (2, 0, "bot", 1000, 1500), (2, 1, "ann", 2500, 0)]]
    games = [{"game_id": "g1", "mode": "duel", "status": "finished", "seat": s, "player": p, "winner_seat": 0,
              "total_score": t, "hp": hp, "initial_hp": 6000, "finished": 200.0}
             for s, p, t, hp in [(0, "bot", 6000, 4500), (1, "ann", 5500, 4000)]]
    ratings = [{"player": "bot", "created": 200.0, "game_id": "g1", "before": 1500.0, "after": 1516.0}]
    rounds, matches, rating_rows = ms.arena_rows(guesses, games, ratings)
    stats = ms.compute(rounds, matches, rating_rows)
    curve = next(c for c in stats["hp_curves"] if c["player"] == "bot")
    assert [(p["round"], p["hp"], p["opponent_hp"]) for p in curve["points"]] == [
        (0, 6000, 6000), (1, 6000, 4000), (2, 4500, 4000)]
    assert {(m["player"], m["result"]) for m in stats["matches"]} == {("bot", "win"), ("ann", "loss")}
    assert [p["rating"] for p in stats["rating_history"][0]["points"]] == [1500.0, 1516.0]
    bot_vs = next(o for o in stats["opponents"] if o["player"] == "bot")
    assert bot_vs["opponent"] == "ann" and bot_vs["mean_score_diff"] == pytest.approx(250.0)


def _duel_round(n, score, opp_score, hp, opp_hp, truth=(41.9, 12.5, "IT"), guess=(48.8, 2.3)):
    duel = opp_score is not None
    dmg = max(0, opp_score - score) if duel else None
    return NS(round_n=n, attempts=1, delay_ms=1.0, capture_ms=2.0, infer_ms=3.0, guess_ms=4.0, result_ms=5.0,
              total_ms=15.0, errors=[],
              state=NS(time_left_s=30.0, hp_own=hp, hp_opponent=opp_hp, multiplier=1.0),
              guess=NS(lat_deg=guess[0], lon_deg=guess[1], expected_score=3000.0, topk=[], timings_ms={}),
              placed=NS(placed_lat_deg=guess[0], placed_lon_deg=guess[1], method="click"),
              result=NS(truth_lat_deg=truth[0], truth_lon_deg=truth[1], truth_country=truth[2], dist_km=1100.0,
                        score=score, timed_out=False, hp_own=max(0, hp - dmg) if duel else None,
                        hp_opponent=max(0, opp_hp - max(0, score - opp_score)) if duel else None,
                        damage=dmg, opponent_score=opp_score))


@pytest.fixture
def duel_log(tmp_path):
    """A real match log (bot.matchlog.MatchLog) with two duels and a classic game."""
    from bot.matchlog import MatchLog

    path = tmp_path / "matchlog.sqlite"
    with MatchLog(path) as log:
        for won, plan in ((True, [(4000, 1000), (3000, 3500), (5000, 0)]), (False, [(100, 4900), (200, 5000)])):
            mid = log.start_match("arena", "duel", f"game-{won}", {"run": "/runs/demo"})
            hp = opp = 6000
            for n, (s, o) in enumerate(plan, 1):
                rec = _duel_round(n, s, o, hp, opp)
                log.log_guess(mid, rec)
                log.log_round(mid, rec)
                hp, opp = rec.result.hp_own, rec.result.hp_opponent
            log.finish_match(mid, NS(total_score=None, won=won, draw=False, hp_own=hp, hp_opponent=opp), "finished")
        mid = log.start_match("arena", "classic", "game-c", {"run": "/runs/demo"})
        log.log_round(mid, _duel_round(1, 4500, None, None, None))
        log.finish_match(mid, NS(total_score=4500, won=None, draw=None, hp_own=None, hp_opponent=None), "finished")
    return path


def test_stats_json_on_a_match_log(duel_log, capsys):
    from pigeon.cli import main

    assert main(["stats", "--matchlog", str(duel_log), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d) == [*ms.STATS_KEYS, "tables"]
    assert set(d["tables"]) == {"bot_summary", "recent_matches", "events"}
    (s,) = d["summary"]
    assert s["player"] == "bot (demo)" and (s["matches"], s["wins"], s["losses"], s["rounds"]) == (3, 1, 1, 6)
    curves = d["hp_curves"]
    assert len(curves) == 2 and [p["hp"] for p in curves[0]["points"]] == [6000, 6000, 5500, 5500]
    assert [p["opponent_hp"] for p in curves[0]["points"]] == [6000, 3000, 3000, 0]
    assert [p["hp"] for p in curves[1]["points"]] == [6000, 1200, 0]
    (opp,) = d["opponents"]
    assert opp["opponent"] == "arena duel" and (opp["wins"], opp["losses"]) == (1, 1)
    assert d["streaks"][0]["longest_win_streak"] == 1 and d["streaks"][0]["current_streak"] == -1
    assert sum(d["score_histogram"]["counts"]["bot (demo)"]) == 6
    assert d["rating_history"] == []


def test_stats_formats_table_csv_html(duel_log, tmp_path, capsys, monkeypatch):
    from pigeon.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["stats", "--matchlog", str(duel_log)]) == 0
    out = capsys.readouterr().out
    for title in ("summary", "opponents", "streaks", "countries", "hp curves", "bot summary"):
        assert title in out, title
    assert main(["stats", "--matchlog", str(duel_log), "--format", "csv", "--out", str(tmp_path / "c")]) == 0
    with open(tmp_path / "c" / "countries.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[0]["country"] == "IT" and "wrong_guess" in rows[0]
    assert (tmp_path / "c" / "bot_rounds.csv").is_file() and (tmp_path / "c" / "hp_curves.csv").is_file()
    page = tmp_path / "s.html"
    assert main(["stats", "--matchlog", str(duel_log), "--format", "html", "--out", str(page)]) == 0
    html = page.read_text()
    assert len(re.findall(r"data:image/png;base64,", html)) == 2  # score histogram, HP curves (no ratings)
    assert "the match log records no ratings" in html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    assert "Per country" in html and "Against each opponent" in html and "arena duel" in html


def test_stats_html_escapes_player_names():
    stats = ms.compute([_round("a", 1, player="<script>x</script>")], [_match("a", "win", player="<b>")])
    html = ms.render_html(stats, {"extra": [{"name": "<i>"}]})
    assert "<script>x" not in html and "&lt;script&gt;x" in html and "&lt;i&gt;" in html
