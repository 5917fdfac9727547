"""The controller state machine against a scripted fake site: no browser, no torch, fake time."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from bot.config import PlayConfig
from bot.controller import Action, BotError, Controller, Memory, decide
from bot.fairplay import FairPlayError, TruthGuard
from bot.matchlog import MatchLog
from bot.sites.base import GameSummary, GuessResult, Phase, PlacedGuess, RoundResult, RoundState, SiteError


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class FakeSite:
    """A scripted game. ``fail[action]`` is a list of exceptions raised by the next calls of that action;
    ``land_then_fail`` makes place_guess register the guess before raising; ``lag`` is how many observations
    still show GUESSING after a guess (a page that has not caught up; observations after an error are
    authoritative, as the Site contract asks); ``opponent_guess_after_s`` (duel) is when the opponent guesses."""

    name = "fake"

    def __init__(self, clock: FakeClock, rounds: int = 3, round_time_s: float | None = None, lag: int = 0,
                 opponent_guess_after_s: float | None = None, countdown_s: float = 15.0) -> None:
        self.clock, self.rounds, self.round_time_s, self.lag = clock, rounds, round_time_s, lag
        self.opponent_guess_after_s, self.countdown_s = opponent_guess_after_s, countdown_s
        self.n, self.guessed, self.closed, self.finished = 1, False, False, False
        self.guesses: list[tuple[int, float, float]] = []
        self.fail: dict[str, list[Exception]] = {}
        self.land_then_fail = False
        self.lag_left = 0
        self.guard = TruthGuard()
        self.recovered = 0
        self.started = clock()
        self.deadline: float | None = None if round_time_s is None else clock() + round_time_s
        self.calls: list[str] = []
        self.double_guesses = 0

    def _maybe_fail(self, action: str) -> None:
        self.calls.append(action)
        if self.fail.get(action):
            self.calls.append("error_seen")
            raise self.fail[action].pop(0)

    def _tick(self) -> None:
        if self.opponent_guess_after_s is not None and not self.closed:
            at = self.started + self.opponent_guess_after_s
            if self.clock() >= at:
                cd = at + self.countdown_s
                self.deadline = cd if self.deadline is None else min(self.deadline, cd)
        if self.deadline is not None and self.clock() > self.deadline and not self.closed:
            self.closed = True
            self.finished = self.n == self.rounds

    def open_game(self, mode: str, rounds: int) -> str:
        return "g1"

    def observe(self) -> RoundState:
        self._maybe_fail("observe")
        if "error_seen" in self.calls[-3:]:
            self.lag_left = 0
        self._tick()
        left = None if self.deadline is None else max(0.0, self.deadline - self.clock())
        common = dict(round_n=self.n, rounds_total=self.rounds, time_left_s=left, game_id="g1")
        if self.finished:
            return RoundState(Phase.FINISHED, **common)
        if self.closed:
            return RoundState(Phase.RESULT, **common)
        if self.guessed:
            if self.lag_left > 0:
                self.lag_left -= 1
                return RoundState(Phase.GUESSING, **common)
            return RoundState(Phase.GUESSED, **common)
        return RoundState(Phase.GUESSING, **common)

    def wait_for_change(self, previous: RoundState, timeout_s: float) -> RoundState:
        self.clock.sleep(timeout_s)
        return self.observe()

    def capture_views(self, round_n: int, n_views: int) -> list[bytes]:
        self._maybe_fail("capture")
        assert round_n == self.n and not self.guessed
        return [b"png%d" % k for k in range(n_views)]

    def place_guess(self, round_n: int, lat: float, lon: float) -> PlacedGuess:
        if self.guessed:  # counted, not asserted: the controller swallows exceptions from place_guess
            self.double_guesses += 1
            raise SiteError("you already guessed in this round")
        self.guard.lock(round_n)
        if self.land_then_fail and self.fail.get("place_guess"):
            self.guesses.append((round_n, lat, lon))
            self.guessed, self.lag_left = True, self.lag
            self._close_if_classic()
        self._maybe_fail("place_guess")
        self.guesses.append((round_n, lat, lon))
        self.guessed, self.lag_left = True, self.lag
        self._close_if_classic()
        return PlacedGuess(round_n, lat, lon, "map", lat, lon)

    def _close_if_classic(self) -> None:
        if self.opponent_guess_after_s is None:
            self.closed = True
            self.finished = self.n == self.rounds

    def read_result(self, round_n: int) -> RoundResult:
        self._maybe_fail("read_result")
        if not self.guessed:
            self.guard.lock(round_n)  # timed out: the round is over
        self.guard.require_locked(round_n, "the result")
        return RoundResult(round_n, 4000 if self.guessed else 0, 200.0, 1.0, 2.0, "FR", timed_out=not self.guessed)

    def next_round(self, round_n: int) -> None:
        self._maybe_fail("next")
        self.n += 1
        self.guessed = self.closed = False
        self.started = self.clock()
        self.deadline = None if self.round_time_s is None else self.clock() + self.round_time_s

    def summary(self) -> GameSummary:
        return GameSummary("g1", 4000 * len(self.guesses))

    def recover(self) -> None:
        self.recovered += 1

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG fake")
        return path

    def post_predictions(self, round_n: int, guess: GuessResult) -> None:
        self.calls.append("post_predictions")


def stub_guess(views):
    assert len(views) == 4
    return GuessResult(48.85, 2.35, topk=[{"lat": 48.85, "lon": 2.35, "p": 0.9}])


def make(tmp_path, **kw):
    clock = FakeClock()
    cfg_kw = {k: kw.pop(k) for k in list(kw) if k in PlayConfig.__dataclass_fields__ and k != "rounds"}
    site = FakeSite(clock, **kw)
    cfg = PlayConfig(**{"max_attempts": 3, **cfg_kw})
    ctrl = Controller(site, stub_guess, cfg, screenshot_dir=tmp_path / "shots", clock=clock, sleep=clock.sleep,
                      rng=random.Random(0))
    return site, ctrl, clock


def test_decide_is_a_pure_table():
    mem = Memory()
    s = lambda ph, n=1: RoundState(ph, round_n=n, rounds_total=3)
    assert decide(s(Phase.WAITING, None), mem) == (Action.WAIT, None)
    assert decide(s(Phase.GUESSING), mem) == (Action.GUESS, 1)
    mem.locked.add(1)
    assert decide(s(Phase.GUESSING), mem) == (Action.WAIT, 1)  # never twice
    assert decide(s(Phase.GUESSED), mem) == (Action.WAIT, 1)
    assert decide(s(Phase.RESULT), mem) == (Action.READ_RESULT, 1)
    # the site moved on by itself (duel's next round, page reloaded): round 1's result is read first
    assert decide(s(Phase.GUESSING, 2), mem) == (Action.READ_RESULT, 1)
    mem.results[1] = RoundResult(1, 1, 1.0)
    assert decide(s(Phase.RESULT), mem) == (Action.NEXT, 1)
    mem.nexted.add(1)
    assert decide(s(Phase.RESULT), mem) == (Action.WAIT, 1)
    assert decide(s(Phase.FINISHED, 2), mem) == (Action.READ_RESULT, 2)
    mem.results[2] = RoundResult(2, 1, 1.0)
    assert decide(s(Phase.FINISHED, 2), mem) == (Action.DONE, 2)


def test_plays_a_game_once_per_round_and_logs_it(tmp_path):
    site, ctrl, _ = make(tmp_path, rounds=3, lag=2)
    with MatchLog(tmp_path / "ml.sqlite") as ml:
        ctrl.matchlog = ml
        report = ctrl.play("classic", 3)
        assert [g[0] for g in site.guesses] == [1, 2, 3] and site.double_guesses == 0
        assert [r.result.score for r in report.rounds] == [4000] * 3 and report.summary.total_score == 12000
        rows = ml.conn.execute("SELECT round_n, truth_country, score, total_ms FROM rounds ORDER BY round_n").fetchall()
        assert [r[0] for r in rows] == [1, 2, 3] and rows[0][1] == "FR" and rows[0][3] is not None
        assert ml.conn.execute("SELECT COUNT(*) FROM guesses").fetchone()[0] == 3
        assert ml.conn.execute("SELECT status FROM matches").fetchone()[0] == "finished"
    assert site.calls.count("post_predictions") == 3


def test_error_before_the_guess_lands_is_retried_once_safely(tmp_path):
    site, ctrl, _ = make(tmp_path, rounds=2)
    site.fail["place_guess"] = [SiteError("selector 'perform_guess' not found")]
    report = ctrl.play("classic", 2)
    assert [g[0] for g in site.guesses] == [1, 2] and site.double_guesses == 0
    assert report.rounds[0].attempts == 2 and "perform_guess" in report.rounds[0].errors[0]


def test_error_after_the_guess_landed_is_not_retried(tmp_path):
    site, ctrl, _ = make(tmp_path, rounds=2, lag=1)
    site.fail["place_guess"] = [SiteError("response timed out")]
    site.land_then_fail = True
    report = ctrl.play("classic", 2)
    assert [g[0] for g in site.guesses] == [1, 2] and site.double_guesses == 0
    assert report.rounds[0].attempts == 1


def test_capture_error_recovers_with_a_fresh_observation(tmp_path):
    site, ctrl, _ = make(tmp_path, rounds=1)
    site.fail["capture"] = [RuntimeError("Execution context was destroyed (page reloaded)")]
    site.fail["observe"] = [RuntimeError("navigating")]
    report = ctrl.play("classic", 1)
    assert site.recovered >= 1 and report.rounds[0].result is not None and len(site.guesses) == 1


def test_persistent_failure_is_a_clear_error_with_a_screenshot(tmp_path):
    site, ctrl, _ = make(tmp_path, rounds=2)
    site.fail["place_guess"] = [SiteError("selector 'perform_guess' not found")] * 5
    with pytest.raises(BotError, match=r"guess in round 1 failed.*perform_guess.*3 attempts.*screenshot") as ei:
        ctrl.play("classic", 2)
    assert ei.value.screenshot is not None and ei.value.screenshot.is_file()
    assert site.guesses == []


def test_human_delay_waits_and_is_skipped_when_time_is_short(tmp_path):
    site, ctrl, _ = make(tmp_path, rounds=2, round_time_s=120.0, human_delay_s=(5.0, 5.0), fast_below_s=20.0)
    report = ctrl.play("classic", 2)
    assert [round(r.delay_ms) for r in report.rounds] == [5000, 5000]
    _, ctrl, _ = make(tmp_path, rounds=1, round_time_s=15.0, human_delay_s=(5.0, 9.0), fast_below_s=20.0)
    assert ctrl.play("classic", 1).rounds[0].delay_ms == 0.0


def test_delay_is_cut_short_when_the_duel_opponent_guesses(tmp_path):
    # the opponent guesses 2 s in; the 15 s countdown is below fast_below_s, so the bot stops waiting
    site, ctrl, _ = make(tmp_path, rounds=1, round_time_s=None, opponent_guess_after_s=2.0, countdown_s=15.0,
                         human_delay_s=(8.0, 8.0), fast_below_s=20.0, poll_s=1.0)
    rec = ctrl.play("duel", 1).rounds[0]
    assert 2000 <= rec.delay_ms <= 3000 and len(site.guesses) == 1


def test_stall_ends_in_an_error(tmp_path):
    site, ctrl, _ = make(tmp_path, rounds=1, stall_timeout_s=30.0)
    site.observe = lambda: RoundState(Phase.WAITING, game_id="g1")  # an opponent who never comes
    with pytest.raises(BotError, match="no progress for 30 s"):
        ctrl.play("duel", 1)


def test_round_timed_out_without_a_guess_is_logged_as_such(tmp_path):
    site, ctrl, clock = make(tmp_path, rounds=1, round_time_s=10.0)

    def slow_guess(views):
        clock.sleep(30.0)  # inference slower than the round
        return stub_guess(views)

    ctrl.guess = slow_guess
    rec = ctrl.play("classic", 1).rounds[0]
    assert site.guesses == [] and rec.placed is None and rec.result.timed_out


def test_fake_guard_matches_the_fairplay_contract():
    g = TruthGuard()
    with pytest.raises(FairPlayError):
        g.require_locked(1, "x")


def test_controller_imports_neither_playwright_nor_torch():
    import subprocess

    code = ("import sys, bot.controller, bot.sites.base, bot.matchlog, bot.mercator, bot.fairplay;"
            "bad=[m for m in ('playwright','torch') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stdout + r.stderr


# ---- issue 15: outages, the round clock, the map's decay ------------------------------------------------------------
def _outage(site, clock, length_s: float) -> None:
    """Make the fake site unreachable (observe and recover raise) for ``length_s`` seconds, starting at the
    first observation after round 1's guess landed (mid-game)."""
    real_observe, window = site.observe, []

    def down() -> bool:
        if not window and site.guesses:
            window.append(clock.t)
        return bool(window) and window[0] <= clock.t < window[0] + length_s

    def observe():
        if down():
            raise SiteError("net::ERR_CONNECTION_REFUSED")
        return real_observe()

    def recover():
        site.recovered += 1
        if down():
            raise SiteError("net::ERR_CONNECTION_REFUSED")

    site.observe, site.recover = observe, recover


def test_outage_is_ridden_out_with_backoff_and_the_round_resumed(tmp_path):
    site, ctrl, clock = make(tmp_path, rounds=3, stall_timeout_s=60.0, backoff_max_s=8.0)
    slept = []
    ctrl.sleep = lambda s: (slept.append(s), clock.sleep(s))
    _outage(site, clock, 25.0)
    report = ctrl.play("classic", 3)
    assert [g[0] for g in site.guesses] == [1, 2, 3] and site.double_guesses == 0
    assert all(r.result is not None for r in report.rounds)
    backoff = [s for s in slept if s >= 0.5]
    assert backoff[:5] == [0.5, 1.0, 2.0, 4.0, 8.0] and max(backoff) == 8.0 and sum(backoff) >= 25.0


def test_outage_longer_than_stall_timeout_gives_up_once_and_abandons(tmp_path):
    site, ctrl, clock = make(tmp_path, rounds=2, stall_timeout_s=20.0)
    abandoned = []
    site.abandon = lambda: abandoned.append(True)
    _outage(site, clock, 1000.0)
    with pytest.raises(BotError, match=r"unreachable for \d+ s.*game abandoned") as ei:
        ctrl.play("classic", 2)
    assert abandoned == [True] and len(str(ei.value).splitlines()) == 1
    assert clock.t - 1000.0 < 40.0          # gave up after about stall_timeout_s, not later


def test_round_clock_limits_the_views_so_the_guess_is_in_time(tmp_path):
    site, ctrl, clock = make(tmp_path, rounds=2, round_time_s=9.0, est_view_s=2.0, est_guess_s=1.0,
                             guess_margin_s=3.0)
    got = []

    def capture(n, k):
        got.append(k)
        clock.sleep(2.0 * k)      # 2 s per heading
        return [b"png%d" % i for i in range(k)]

    site.capture_views = capture
    ctrl.guess = lambda views: GuessResult(1.0, 2.0)
    report = ctrl.play("classic", 2)
    # round 1: 9 - 3 (margin) - 1 (estimated inference) = 5 s: two 2-s headings; round 2 uses the measured
    # inference time (0 on this fake clock): 6 s, three headings
    assert got == [2, 3] and [g[0] for g in site.guesses] == [1, 2]
    assert all(not r.result.timed_out for r in report.rounds)
    assert [r.views_captured for r in report.rounds] == [2, 3]


def test_pad_views_repeats_headings_in_order():
    from bot.controller import pad_views

    assert pad_views([b"a"], 4) == [b"a"] * 4 and pad_views([b"a", b"c"], 4) == [b"a", b"a", b"c", b"c"]
    assert pad_views([b"a", b"b", b"c", b"d"], 4) == [b"a", b"b", b"c", b"d"] and pad_views([], 4) == []


def test_the_maps_decay_reaches_a_guess_function_that_takes_it(tmp_path):
    site, ctrl, _ = make(tmp_path, rounds=1)
    real = site.observe
    site.observe = lambda: __import__("dataclasses").replace(real(), decay_km=123.4)
    seen = []
    ctrl = Controller(site, lambda views, decay_km=None: seen.append(decay_km) or GuessResult(1.0, 2.0), ctrl.cfg,
                      screenshot_dir=tmp_path, clock=ctrl.clock, sleep=ctrl.sleep)
    ctrl.play("classic", 1)
    assert seen == [pytest.approx(123.4)]
