"""The interface every site adapter offers the controller, and the plain data it exchanges.

An adapter owns one browser page on one site (the local arena, geoguessr.com). The controller only sees
``RoundState`` snapshots, PNG bytes and ``RoundResult`` records, so it runs unchanged on either site and, with a
fake adapter, without a browser at all.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class Phase(str, enum.Enum):
    WAITING = "waiting"      # lobby, loading, opponent not there yet, or between rounds
    GUESSING = "guessing"    # a round is open and this player has not guessed
    GUESSED = "guessed"      # this player's guess is in; the round is still open (duel opponent)
    RESULT = "result"        # the round is over and its result is on screen
    FINISHED = "finished"    # the game is over


@dataclass(frozen=True)
class Rules:
    """What the player may do with the panorama (GeoGuessr's ``forbidMoving/Rotating/Zooming``)."""

    forbid_moving: bool = False
    forbid_rotating: bool = False
    forbid_zooming: bool = False

    @property
    def name(self) -> str:
        """``moving``, ``NM``, ``NMPZ`` (no move, pan or zoom), or the forbidden parts, e.g. ``NZ``, ``NM NZ``."""
        flags = (self.forbid_moving, self.forbid_rotating, self.forbid_zooming)
        if flags == (True, True, True):
            return "NMPZ"
        parts = [p for p, f in zip(("NM", "NR", "NZ"), flags) if f]
        return " ".join(parts) or "moving"

    def views(self, wanted: int) -> int:
        """Headings the bot may capture: one (the start view) where turning is forbidden, else ``wanted``."""
        return 1 if self.forbid_rotating else wanted


@dataclass(frozen=True)
class RoundState:
    """One observation of the game. ``time_left_s`` is None without a deadline; HP only in duels;
    ``rounds_total`` None when unknown or unlimited; ``decay_km`` the map's score decay (score =
    5000 * exp(-d / decay_km)) when the site says how large its map is; ``rules`` None when unknown."""

    phase: Phase
    round_n: int | None = None
    rounds_total: int | None = None
    time_left_s: float | None = None
    hp_own: int | None = None
    hp_opponent: int | None = None
    multiplier: float | None = None
    opponent_guessed: bool = False
    game_id: str | None = None
    rules: Rules | None = None
    decay_km: float | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """What must change for the controller to act again (time and HP ticking do not count)."""
        return (self.phase, self.round_n)


@dataclass(frozen=True)
class GuessResult:
    """What the guess callable returns: the point to play and, optionally, the belief behind it."""

    lat_deg: float
    lon_deg: float
    topk: list[dict[str, float]] = field(default_factory=list)    # [{lat, lon, p}], best first
    heat: list[list[float]] = field(default_factory=list)         # [[lat, lon, p], ...]
    expected_score: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    text: dict | None = None                                      # text cue: reads, best place, snapped


@dataclass(frozen=True)
class PlacedGuess:
    """How a guess went in: ``method`` is "map" (clicked) or "api"; ``placed_*`` is where the pin landed
    when the adapter can tell (the map click's inverse projection), else the requested point."""

    round_n: int
    lat_deg: float
    lon_deg: float
    method: str
    placed_lat_deg: float
    placed_lon_deg: float


@dataclass(frozen=True)
class RoundResult:
    """A finished round as the site reports it, read only after this player's guess was locked."""

    round_n: int
    score: int | None
    dist_km: float | None
    truth_lat_deg: float | None = None
    truth_lon_deg: float | None = None
    truth_country: str | None = None
    guess_lat_deg: float | None = None
    guess_lon_deg: float | None = None
    timed_out: bool = False
    hp_own: int | None = None
    hp_opponent: int | None = None
    damage: int | None = None
    multiplier: float | None = None
    opponent_score: int | None = None


@dataclass(frozen=True)
class GameSummary:
    """The end of a game: totals, and for duels the winner from this player's side."""

    game_id: str
    total_score: int | None
    won: bool | None = None
    draw: bool = False
    hp_own: int | None = None
    hp_opponent: int | None = None


class SiteError(RuntimeError):
    """The page does not look like the adapter expects (a selector is missing, a state never came)."""


class WatchOnly(SiteError):
    """A page where the bot cannot play (party, battle royale, a game it has no seat in): it never acts there,
    and the controller stops at once instead of retrying."""


@runtime_checkable
class Site(Protocol):
    """A game site the controller can play. Every wait inside is bounded; errors raise ``SiteError``."""

    name: str

    def open_game(self, mode: str, rounds: int) -> str:
        """Start (or join) a game and navigate to it; returns the game id."""

    def observe(self) -> RoundState:
        """The current state, read without waiting."""

    def wait_for_change(self, previous: RoundState, timeout_s: float) -> RoundState:
        """Block (bounded) until ``state.key`` differs from ``previous.key`` or the timeout passes."""

    def capture_views(self, round_n: int, n_views: int) -> list[bytes]:
        """PNG bytes of ``n_views`` headings, evenly spaced from the start heading, with the UI hidden."""

    def place_guess(self, round_n: int, lat_deg: float, lon_deg: float) -> PlacedGuess:
        """Lock the round's fair-play filter (before anything is sent) and submit the guess of ``round_n``."""

    def read_result(self, round_n: int) -> RoundResult:
        """The result of a round this player has locked (FairPlayError otherwise); re-arms the filter."""

    def next_round(self, round_n: int) -> None:
        """Leave the result screen of ``round_n`` (classic: start the next round; duel: ready)."""

    def summary(self) -> GameSummary:
        """The finished game."""

    def recover(self) -> None:
        """Reload the game page after an error (the state is re-observed afterwards)."""

    def screenshot(self, path: Path) -> Path:
        """Full-page PNG for error reports; returns the path written."""

    def post_predictions(self, round_n: int, guess: GuessResult) -> None:
        """Share the belief with a stream overlay where the site has one (no-op elsewhere)."""

    # optional: ``abandon() -> None`` gives up this player's seat when the bot stops (the controller calls it
    # when present, so a site with a server of ours never keeps a game running for a bot that left)


def even_headings(n_views: int, start_deg: float = 0.0) -> Sequence[float]:
    """``n_views`` headings evenly spaced from ``start_deg`` (degrees in [0, 360))."""
    return [(start_deg + 360.0 * k / n_views) % 360.0 for k in range(n_views)]
