"""Pure game rules of the arena: round scoring, duel damage multipliers, health, Elo ratings.

No I/O and no clock: every function maps numbers to numbers, so the state machine in ``games.py`` and the
tests share one definition. Scoring is the GeoGuessr world-map formula from ``model.geo.geography`` with PIGEON's
decay, round(5000 * exp(-d / 1492.7 km)), the same as our evaluation metric (the live site's world map decays over
1491.69 km: the two differ by at most 1 point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from model.geo.geography import geoguessr_score, haversine_km

MAX_ROUND_SCORE = 5000
ELO_K = 32.0
ELO_START = 1500.0


@dataclass(frozen=True)
class DuelOptions:
    """Duel settings, mirroring the ``options`` block of a GeoGuessr duel's state (game server
    ``GET /api/duels/{id}``: ``initialHealth``, ``roundsWithoutDamageMultiplier``, ``multiplierIncrement``,
    ...); the rules are in docs/arena.md, "Modes".

    The multiplier is 1 for the first ``rounds_without_multiplier`` rounds, then grows by
    ``multiplier_increment`` per round: 1, 1, 1.5, 2, 2.5, ... with the defaults.
    """

    initial_hp: int = 6000
    countdown_s: float = 15.0
    rounds_without_multiplier: int = 2
    multiplier_increment: float = 0.5

    def __post_init__(self) -> None:
        if not (isinstance(self.initial_hp, int) and 1 <= self.initial_hp <= 1_000_000):
            raise ValueError(f"initial_hp must be an integer in [1, 1000000], got {self.initial_hp!r}")
        if not (math.isfinite(self.countdown_s) and 1.0 <= self.countdown_s <= 3600.0):
            raise ValueError(f"countdown_s must be in [1, 3600] seconds, got {self.countdown_s!r}")
        if not (isinstance(self.rounds_without_multiplier, int) and self.rounds_without_multiplier >= 0):
            raise ValueError(
                f"rounds_without_multiplier must be an integer >= 0, got {self.rounds_without_multiplier!r}"
            )
        if not (math.isfinite(self.multiplier_increment) and 0.0 <= self.multiplier_increment <= 10.0):
            raise ValueError(f"multiplier_increment must be in [0, 10], got {self.multiplier_increment!r}")


def round_multiplier(round_n: int, opts: DuelOptions) -> float:
    """Damage multiplier of duel round ``round_n`` (1-based)."""
    if round_n < 1:
        raise ValueError(f"round numbers start at 1, got {round_n}")
    return 1.0 + max(0, round_n - opts.rounds_without_multiplier) * opts.multiplier_increment


def score_guess(
    guess_lat_deg: float, guess_lon_deg: float, true_lat_deg: float, true_lon_deg: float
) -> tuple[float, int]:
    """(distance_km, points) of one guess; raises ValueError for coordinates out of range or not finite."""
    dist_km = float(haversine_km(guess_lat_deg, guess_lon_deg, true_lat_deg, true_lon_deg))
    return dist_km, int(geoguessr_score(dist_km))


def duel_damage(scores: list[int], multiplier: float) -> list[int]:
    """HP lost by each side of a duel round: the lower score loses (difference x multiplier), rounded.

    ``scores`` holds one round score per seat (a missing guess scores 0). Ties deal no damage; halves
    round up.
    """
    if len(scores) != 2:
        raise ValueError(f"duels have exactly two sides, got {len(scores)} scores")
    diff = abs(scores[0] - scores[1])
    hit = math.floor(diff * multiplier + 0.5)  # half up (Python's round() would round 2.5 to 2)
    if scores[0] < scores[1]:
        return [hit, 0]
    if scores[1] < scores[0]:
        return [0, hit]
    return [0, 0]


def apply_damage(hp: list[int], damage: list[int]) -> list[int]:
    """New HP per seat, floored at 0."""
    return [max(0, h - d) for h, d in zip(hp, damage, strict=True)]


def duel_winner(hp: list[int]) -> int | None:
    """Seat with more HP left, or None for a draw (equal HP)."""
    if hp[0] == hp[1]:
        return None
    return 0 if hp[0] > hp[1] else 1


def elo_update(rating_a: float, rating_b: float, score_a: float, k: float = ELO_K) -> tuple[float, float]:
    """Elo ratings after one game; ``score_a`` is 1 (A won), 0.5 (draw) or 0 (B won)."""
    if score_a not in (0.0, 0.5, 1.0):
        raise ValueError(f"score_a must be 0, 0.5 or 1, got {score_a!r}")
    expected_a = 1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / 400.0))
    delta = k * (score_a - expected_a)
    return rating_a + delta, rating_b - delta
