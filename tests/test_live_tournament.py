"""The live view of `pigeon play`/`pigeon duel` (fed by the controller's match-log calls) and `pigeon tournament`
(parallel bot-vs-bot duels in a real arena with real browsers, and the report's arithmetic)."""
from __future__ import annotations

import io
import json

import pytest
from botkit import start_arena

from arena.demo_world import make_demo_world
from bot.config import BotConfig, PlayConfig
from bot.controller import RoundRecord
from bot.matchlog import MatchLog
from bot.observer import ObservedLog
from bot.sites.base import GameSummary, GuessResult, Phase, PlacedGuess, RoundResult, RoundState
from bot.tournament import DuelResult, Entrant, pairings, ratings, run_tournament, schedule, summarise
from pigeon.cli._live import LiveView, country_lookup, live_enabled
from pigeon.cli.tournament import markdown, parse_entrant

CENTROIDS = [(41.9, 12.5), (45.4, 9.2), (48.9, 2.3), (52.5, 13.4)]
CELL_COUNTRY = ["IT", "IT", "FR", ""]


def _record(n: int, score: int, hp: tuple[int, int]) -> RoundRecord:
    heat = [[lat, lon, p] for (lat, lon), p in zip(CENTROIDS, (0.4, 0.2, 0.3, 0.1))]
    text = {"reads": [[0, "RIGA 12 km", 0.9]], "best": {"name": "Riga", "country": "LV", "posterior": 0.87},
            "snapped": True}
    g = GuessResult(41.9, 12.5, topk=[{"lat": 41.9, "lon": 12.5, "p": 0.4}], heat=heat, expected_score=3210.0,
                    text=text)
    rec = RoundRecord(n, RoundState(Phase.GUESSING, round_n=n, rounds_total=3), guess=g, views_captured=4,
                      capture_ms=1500.0, infer_ms=400.0)
    rec.placed = PlacedGuess(n, 41.9, 12.5, "map", 41.9, 12.5)
    rec.result = RoundResult(n, score, 1234.5, 45.0, 7.0, "IT", 41.9, 12.5, hp_own=hp[0], hp_opponent=hp[1],
                             damage=500, opponent_score=score - 500)
    return rec


class Exploding:
    def on_guess(self, rec):
        raise RuntimeError("a broken view")


def test_live_view_shows_the_round_and_the_log_still_gets_everything(tmp_path):
    from rich.console import Console

    con = Console(record=True, width=170, file=io.StringIO(), force_terminal=False)
    view = LiveView(con, "arena duel", 3, countries=country_lookup(CENTROIDS, CELL_COUNTRY), enabled=False)
    obs = view.seat("bot A (demo, expected_score)")
    with MatchLog(tmp_path / "ml.sqlite") as ml:
        log = ObservedLog(ml, obs)
        mid = log.start_match("arena", "duel", "g1", {"run": "demo"})
        rec = _record(1, 3000, (6000, 5500))
        log.log_guess(mid, rec)
        con.print(view.renderable())
        during = con.export_text()
        log.log_round(mid, rec)
        log.finish_match(mid, GameSummary("g1", 3000, won=True, hp_own=6000, hp_opponent=5500), "finished")
        con.print(view.renderable())
        after = con.export_text()
        ObservedLog(ml, Exploding()).log_guess(mid, rec)        # a failing view does not stop the game
        rows = ml.conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
        assert rows >= 1
    # while the round is open: views, countries (cells summed: IT 0.4 + 0.2), guess, expected score, signs read
    assert "4 captured in 1.5 s" in during and "IT 60%" in during and "FR 30%" in during
    assert "no country 10%" in during and "41.90, 12.50" in during and "3,210" in during
    assert "Riga LV 87% snap" in during and "guess locked" in during and "round 1/3" in during
    # after the result: distance, score, HP, the truth's country, the progress line's total and the verdict
    assert "1,234.5 km (truth IT), 3,000 points, HP 6,000 : 5,500, damage 500" in after
    assert "won 6,000 : 5,500" in after and "bot A (demo, expected_score) 3,000 (HP 6,000 : 5,500)" in after


def test_live_view_only_on_a_terminal_and_never_with_quiet():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert live_enabled(False, Tty()) and not live_enabled(True, Tty()) and not live_enabled(False, io.StringIO())


def test_entrants_and_schedule():
    from pathlib import Path

    assert parse_entrant("checkpoints/demo:head") == (Path("checkpoints/demo"), "head")
    assert parse_entrant("runs/a") == (Path("runs/a"), None)
    with pytest.raises(ValueError, match="unknown guess mode"):
        parse_entrant("runs/a:best")
    plan = schedule(["a", "b", "c"], 2)
    assert len(plan) == 6 and plan[:3] == [("a", "b"), ("a", "c"), ("b", "c")] and plan[3:] == [("b", "a"), ("c", "a"),
                                                                                                 ("c", "b")]
    with pytest.raises(ValueError, match="unique"):
        schedule(["a", "a"], 1)
    with pytest.raises(ValueError, match="at least two"):
        schedule(["a"], 1)


def test_pairings_intervals_and_ratings_arithmetic():
    def duel(i, a, b, sa, sb, winner):
        return DuelResult(i, a, b, f"g{i}", len(sa), sa, sb, None, None, winner, 10.0)

    res = [duel(0, "x", "y", [3000, 4000], [2000, 1000], "x"), duel(1, "y", "x", [2500, 2500], [2500, 2500], "draw"),
           duel(2, "x", "y", [1000, 1000], [4000, 4000], "y"), duel(3, "y", "x", [100], [5000], "x"),
           DuelResult(4, "x", "y", "", 0, [], [], None, None, None, 3.0, error="boom")]
    (p,) = pairings(res)
    assert (p["player"], p["duels"], p["failed"], p["wins"], p["draws"], p["losses"]) == ("x", 5, 1, 2, 1, 1)
    assert p["win_rate"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    diffs = [1000, 3000, 0, 0, -3000, -3000, 4900]
    assert p["mean_score_diff"] == pytest.approx(sum(diffs) / len(diffs)) and p["rounds"] == 7
    lo, hi = p["mean_score_diff_ci95"]
    assert lo <= p["mean_score_diff"] <= hi and lo < hi
    lo, hi = p["win_rate_ci95"]
    assert 0 <= lo <= p["win_rate"] <= hi <= 1
    r = {row["entrant"]: row for row in ratings(res, ["x", "y"])}
    assert (r["x"]["wins"], r["x"]["draws"], r["x"]["losses"], r["x"]["duels"]) == (2, 1, 1, 4)
    assert r["x"]["mu"] > r["y"]["mu"] and r["x"]["mu_ci95"][0] < r["x"]["mu"] < r["x"]["mu_ci95"][1]


def _const(lat, lon):
    def guess(views):
        assert views and all(v[:8] == b"\x89PNG\r\n\x1a\n" for v in views)   # real captures of the arena
        return GuessResult(lat, lon, topk=[{"lat": lat, "lon": lon, "p": 0.5}], heat=[[lat, lon, 0.5]])

    return guess


@pytest.mark.browser
def test_tournament_plays_parallel_duels_in_a_real_arena(tmp_path):
    srv = start_arena(make_demo_world(tmp_path / "world", n_locations=12), tmp_path / "arena.sqlite")
    try:
        cfg = BotConfig(play=PlayConfig(screenshots_dir=str(tmp_path / "shots")))
        entrants = [Entrant("paris", _const(48.85, 2.35), {"run": "p"}), Entrant("paris-too", _const(48.85, 2.35)),
                    Entrant("sydney", _const(-33.87, 151.21))]
        seen = []
        results, wall = run_tournament(srv.url, entrants, cfg, rounds=2, duels_per_pair=1, parallel=2,
                                       matchlog_path=tmp_path / "ml.sqlite", on_result=seen.append)
    finally:
        srv.stop()
    assert len(results) == 3 and len(seen) == 3 and all(r.error is None for r in results), results
    by_pair = {frozenset((r.a, r.b)): r for r in results}
    twin = by_pair[frozenset(("paris", "paris-too"))]
    # the same guesses on the same rounds: every round a tie, the duel a 6,000 : 6,000 draw, reported as such
    assert twin.winner == "draw" and twin.scores_a == twin.scores_b and (twin.hp_a, twin.hp_b) == (6000, 6000)
    assert len({r.game_id for r in results}) == 3   # each pairing in its own game (joined by id, not the lobby)
    for r in results:
        assert r.rounds == 2 and len(r.scores_a) == len(r.scores_b) == 2
        if r.winner not in ("draw", None):
            assert (r.hp_a > r.hp_b) == (r.winner == r.a)
    with MatchLog(tmp_path / "ml.sqlite") as ml:
        n = ml.conn.execute("SELECT COUNT(*) FROM matches WHERE status='finished' AND mode='duel'").fetchone()[0]
    assert n == 6   # two seats per duel, each in the match log
    report = summarise(results, entrants, wall, 2, rounds_per_duel=2, text_cue=False, finished_utc="now")
    json.dumps(report)
    assert report["finished"] == 3 and report["draws"] >= 1 and report["duels_per_hour"] > 0
    assert "| paris | paris-too | 1 | 0-1-0 | 0.50" in markdown(report)


def test_log_lines_go_above_the_live_view_and_the_handler_is_restored():
    import logging

    from rich.console import Console

    handler = logging.StreamHandler()        # a stderr handler, as configure_logging installs
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        buf, original = io.StringIO(), handler.stream
        with LiveView(Console(file=buf, force_terminal=True, width=100), "arena classic", 3) as view:
            view.seat("bot")
            logging.getLogger("bot.controller").warning("round 1: 12.0 km, 4990 points")
            assert handler.stream is sys_stderr() and handler.stream is not original   # rich's redirect
        assert handler.stream is original
        assert "round 1: 12.0 km, 4990 points" in buf.getvalue() and "arena classic" in buf.getvalue()
    finally:
        root.removeHandler(handler)


def sys_stderr():
    import sys

    return sys.stderr
