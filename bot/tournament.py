"""Automated duels at volume: bot vs bot duels in the arena, several at once, and what they add up to.

Every seat is a real bot client: its own Chromium (Playwright's sync API wants one per thread), its own
``ArenaSite`` and ``Controller``, the same code that plays a person. Seat A creates the duel and seat B joins that
very game by id (not from the lobby, where another pairing's duel may be waiting). The bot talks to the arena
over HTTP only; the arena is started by the caller (``pigeon tournament``).

Two seats of the same run and guess mode see the same views and make the same guess, so every round is a tie
and every duel a 6,000 : 6,000 draw: a tournament pairs *different* entrants (runs and/or guess modes), and
draws are reported as draws (counted ½ in win rates).

The summary (``summarise``): per pairing the duels won, drawn and lost, the win rate (draws ½) and the mean
score difference per round, each with a 95 % bootstrap interval that resamples whole duels (rounds of one duel
share a pair of players and are not independent); and an openskill (Plackett-Luce) rating table over every
decided or drawn duel in the order they ended.
"""
from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.config import BotConfig
from bot.controller import GameReport, GuessFn

log = logging.getLogger(__name__)

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 16


@dataclass(frozen=True)
class Entrant:
    """One competitor: a display ``name`` (unique in the tournament), its guess function and the model info the
    match log records (``run``, ``manifest_sha256``, ..., ``guess_mode``)."""

    name: str
    guess: GuessFn
    model: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DuelResult:
    """One finished (or failed) duel, from seat A's side; scores are GeoGuessr points per round."""

    index: int
    a: str
    b: str
    game_id: str
    rounds: int
    scores_a: list[int]
    scores_b: list[int]
    hp_a: int | None
    hp_b: int | None
    winner: str | None            # a's or b's name, "draw", or None when the duel did not finish
    seconds: float
    error: str | None = None


def _locked(guess: GuessFn) -> GuessFn:
    """One call at a time per entrant (a Predictor is shared by that entrant's parallel duels)."""
    import inspect

    lock = threading.Lock()
    try:
        takes_decay = "decay_km" in inspect.signature(guess).parameters
    except (TypeError, ValueError):
        takes_decay = False

    def call(views: Sequence[bytes], decay_km: float | None = None):
        with lock:
            return guess(views, decay_km=decay_km) if takes_decay and decay_km is not None else guess(views)

    return call


def duel_pair(url: str, seats: tuple[Entrant, Entrant], cfg: BotConfig, rounds: int, *,
              matchlog_path: Path | None = None, observers: tuple[Any, Any] = (None, None),
              duel_options: dict | None = None) -> tuple[GameReport, GameReport]:
    """One duel: seat A creates it, seat B joins A's game by id; each seat in its own thread and browser.
    ``observers``: ``bot.observer.GameObserver`` per seat (live view, progress), or None. Raises the first
    seat's error when a seat fails (the other seat then gives up at its stall timeout at the latest)."""
    from bot.driver import open_browser
    from bot.matchlog import MatchLog
    from bot.observer import ObservedLog
    from bot.play import ArenaGame, play_arena, run_two_seats

    a_done = threading.Event()
    box: dict[str, Any] = {}

    def on_site_a(site: Any) -> None:
        box["site"] = site

    def game_id_of_a() -> str:
        end = time.monotonic() + cfg.play.stall_timeout_s
        while time.monotonic() < end:
            site = box.get("site")
            if site is not None and site.game_id:
                return site.game_id
            if a_done.is_set():
                raise RuntimeError("seat A stopped before creating the duel")
            time.sleep(0.1)
        raise TimeoutError(f"seat A created no duel within {cfg.play.stall_timeout_s:.0f} s")

    def run(i: int) -> GameReport:
        ml = MatchLog(matchlog_path) if matchlog_path else None
        log_ = ObservedLog(ml, observers[i]) if observers[i] is not None else ml
        try:
            with open_browser(cfg.browser) as browser:
                if i == 0:
                    game = ArenaGame("duel", rounds, duel_options=duel_options, player_name=seats[0].name)
                    return play_arena(browser, url, seats[0].guess, cfg, game, matchlog=log_,
                                      model=seats[0].model, on_site=on_site_a)
                game = ArenaGame("duel", rounds, join=game_id_of_a(), player_name=seats[1].name)
                return play_arena(browser, url, seats[1].guess, cfg, game, matchlog=log_, model=seats[1].model)
        finally:
            if i == 0:
                a_done.set()
            if ml is not None:
                ml.close()

    return run_two_seats(run, "duel-seat")


def schedule(names: Sequence[str], duels_per_pair: int) -> list[tuple[str, str]]:
    """Round-robin: every pair of entrants ``duels_per_pair`` times, who creates the duel alternating (seat A
    first in even duels, second in odd ones), pairs interleaved so parallel duels mix the pairs."""
    if len(set(names)) != len(names):
        raise ValueError(f"entrant names must be unique: {list(names)}")
    if len(names) < 2:
        raise ValueError("a tournament needs at least two entrants (runs and/or guess modes)")
    if duels_per_pair < 1:
        raise ValueError(f"duels per pair must be >= 1, got {duels_per_pair}")
    pairs = list(itertools.combinations(names, 2))
    return [(a, b) if k % 2 == 0 else (b, a) for k in range(duels_per_pair) for a, b in pairs]


def result_of(index: int, a: str, b: str, ra: GameReport, seconds: float) -> DuelResult:
    """A ``DuelResult`` from seat A's report (its rounds carry both scores; its summary the HP and winner)."""
    own = [r.result.score or 0 for r in ra.rounds if r.result is not None]
    opp = [r.result.opponent_score or 0 for r in ra.rounds if r.result is not None]
    s = ra.summary
    if s is None:
        winner = None
    elif s.draw:
        winner = "draw"
    elif s.won is None:
        winner = None
    else:
        winner = a if s.won else b
    return DuelResult(index, a, b, ra.game_id, len(own), own, opp, s.hp_own if s else None,
                      s.hp_opponent if s else None, winner, seconds)


def run_tournament(url: str, entrants: Sequence[Entrant], cfg: BotConfig, *, rounds: int, duels_per_pair: int,
                   parallel: int = 2, matchlog_path: Path | None = None, duel_options: dict | None = None,
                   on_result: Callable[[DuelResult], None] | None = None) -> tuple[list[DuelResult], float]:
    """Play the schedule with ``parallel`` duels at once. Returns (results in schedule order, wall seconds).
    A duel that fails is recorded with its ``error`` (winner None) and the tournament goes on."""
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    by_name = {e.name: Entrant(e.name, _locked(e.guess), e.model) for e in entrants}
    plan = schedule([e.name for e in entrants], duels_per_pair)

    def one(k: int) -> DuelResult:
        a, b = plan[k]
        t0 = time.monotonic()
        try:
            ra, _rb = duel_pair(url, (by_name[a], by_name[b]), cfg, rounds, matchlog_path=matchlog_path,
                                duel_options=duel_options)
            res = result_of(k, a, b, ra, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - one broken duel must not end the tournament
            log.warning("duel %d (%s vs %s) failed: %s", k, a, b, e)
            res = DuelResult(k, a, b, "", 0, [], [], None, None, None, time.monotonic() - t0,
                             error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
        if on_result is not None:
            on_result(res)
        return res

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="duel") as pool:
        results = list(pool.map(one, range(len(plan))))
    return results, time.monotonic() - t0


# ---- summary -------------------------------------------------------------------------------------------------
def _bootstrap(groups: list[list[float]], stat: Callable[[list[float]], float | None],
               samples: int = BOOTSTRAP_SAMPLES) -> tuple[float | None, float | None]:
    """95 % percentile interval of ``stat`` over ``samples`` resamples of whole groups (duels); fixed seed."""
    if not groups:
        return None, None
    rng = random.Random(BOOTSTRAP_SEED)
    vals = []
    for _ in range(samples):
        flat = [x for _ in groups for x in groups[rng.randrange(len(groups))]]
        v = stat(flat)
        if v is not None:
            vals.append(v)
    if not vals:
        return None, None
    vals.sort()
    return vals[int(0.025 * (len(vals) - 1))], vals[int(0.975 * (len(vals) - 1))]


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def pairings(results: Sequence[DuelResult]) -> list[dict[str, Any]]:
    """Per pair (names sorted; ``player`` is the first): duels, failed, wins/draws/losses of ``player``, win
    rate (draws ½) with its 95 % interval, mean score difference per round (player − opponent, points) with its
    95 % interval, mean score per round of each."""
    out = []
    keys = sorted({tuple(sorted((r.a, r.b))) for r in results})
    for p, q in keys:
        rs = [r for r in results if {r.a, r.b} == {p, q}]
        done = [r for r in rs if r.winner is not None]
        outcome = [[1.0 if r.winner == p else 0.5 if r.winner == "draw" else 0.0] for r in done]
        diffs, own, opp = [], [], []
        for r in done:
            mine, theirs = (r.scores_a, r.scores_b) if r.a == p else (r.scores_b, r.scores_a)
            diffs.append([float(x - y) for x, y in zip(mine, theirs)])
            own += mine
            opp += theirs
        lo, hi = _bootstrap(outcome, _mean)
        dlo, dhi = _bootstrap(diffs, _mean)
        out.append({"player": p, "opponent": q, "duels": len(rs), "failed": len(rs) - len(done),
                    "wins": sum(r.winner == p for r in done), "draws": sum(r.winner == "draw" for r in done),
                    "losses": sum(r.winner == q for r in done),
                    "win_rate": _mean([o[0] for o in outcome]), "win_rate_ci95": [lo, hi],
                    "rounds": sum(len(d) for d in diffs), "mean_score": _mean(own), "opponent_mean_score": _mean(opp),
                    "mean_score_diff": _mean([x for d in diffs for x in d]), "mean_score_diff_ci95": [dlo, dhi]})
    return out


def ratings(results: Sequence[DuelResult], names: Sequence[str]) -> list[dict[str, Any]]:
    """openskill Plackett-Luce over finished duels in schedule order (draws as ties): per entrant mu, sigma,
    95 % interval mu ± 1.96 sigma, ordinal mu − 3 sigma, duels, wins, draws, losses; best ordinal first."""
    from openskill.models import PlackettLuce

    model = PlackettLuce()
    rating = {n: model.rating(name=n) for n in names}
    tally = {n: {"duels": 0, "wins": 0, "draws": 0, "losses": 0} for n in names}
    for r in results:
        if r.winner is None:
            continue
        ranks = [1, 1] if r.winner == "draw" else [1, 2] if r.winner == r.a else [2, 1]
        (ra,), (rb,) = model.rate([[rating[r.a]], [rating[r.b]]], ranks=ranks)
        rating[r.a], rating[r.b] = ra, rb
        for n, res in ((r.a, ranks[0] - ranks[1]), (r.b, ranks[1] - ranks[0])):
            tally[n]["duels"] += 1
            tally[n]["wins" if res < 0 else "losses" if res > 0 else "draws"] += 1
    rows = [{"entrant": n, "mu": rating[n].mu, "sigma": rating[n].sigma,
             "mu_ci95": [rating[n].mu - 1.96 * rating[n].sigma, rating[n].mu + 1.96 * rating[n].sigma],
             "ordinal": rating[n].mu - 3 * rating[n].sigma, **tally[n]} for n in names]
    return sorted(rows, key=lambda x: -x["ordinal"])


def summarise(results: Sequence[DuelResult], entrants: Sequence[Entrant], wall_s: float, parallel: int,
              **meta: Any) -> dict[str, Any]:
    """The tournament report (JSON-ready): meta, duels per hour (finished duels / wall time), pairings, ratings,
    every duel."""
    finished = [r for r in results if r.winner is not None]
    return {"format": "pigeon-tournament", "version": 1, **meta, "parallel": parallel,
            "entrants": [{"name": e.name, **{k: v for k, v in e.model.items() if k in ("run", "guess_mode",
                                                                                      "manifest_sha256")}}
                         for e in entrants],
            "duels": len(results), "finished": len(finished), "failed": len(results) - len(finished),
            "draws": sum(r.winner == "draw" for r in finished), "wall_s": wall_s,
            "duels_per_hour": 3600.0 * len(finished) / wall_s if wall_s > 0 else None,
            "mean_duel_s": _mean([r.seconds for r in finished]),
            "pairings": pairings(results), "ratings": ratings(results, [e.name for e in entrants]),
            "results": [asdict(r) for r in results]}
