"""Request and response bodies of the arena JSON API (they also make FastAPI's /openapi.json)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Lat = Annotated[
    float, Field(ge=-90.0, le=90.0, allow_inf_nan=False, strict=True, description="latitude, degrees")
]
Lon = Annotated[
    float, Field(ge=-180.0, le=180.0, allow_inf_nan=False, strict=True, description="longitude, degrees")
]
Prob = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
# strict mode would refuse a JSON array as a tuple; the numbers inside stay strict
HeatPoint = Annotated[tuple[Lat, Lon, Prob], Field(strict=False)]
GameId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


class _In(BaseModel):
    # strict: "10" or true is not a latitude; unknown keys are typos or probes, not something to ignore
    model_config = ConfigDict(extra="forbid", strict=True)


class PlayerIn(_In):
    name: str = Field(min_length=1, max_length=40)
    kind: Literal["human", "bot"] = "human"


class VerdictIn(_In):
    verdict: Literal["human", "bot"] = Field(description="was the opponent a person (human) or a bot?")


class PlayerOut(BaseModel):
    id: str
    name: str
    kind: str
    token: Optional[str] = Field(
        None, description="secret; send it as the X-Player-Token header (shown once)"
    )


class DuelIn(_In):
    initial_hp: int = Field(6000, ge=1, le=1_000_000)
    countdown_s: float = Field(
        15.0,
        ge=1.0,
        le=3600.0,
        allow_inf_nan=False,
        description="seconds left for the other player after the first guess",
    )
    rounds_without_multiplier: int = Field(2, ge=0, le=100)
    multiplier_increment: float = Field(0.5, ge=0.0, le=10.0, allow_inf_nan=False)


class GameIn(_In):
    mode: Literal["classic", "duel", "blind"] = "classic"
    rounds: Optional[int] = Field(
        None, ge=1, le=100, description="classic: 5; duels: the maximum (default 20)"
    )
    timer_s: Optional[float] = Field(
        None, ge=5.0, le=3600.0, allow_inf_nan=False, description="round time limit"
    )
    world: Optional[str] = Field(None, max_length=200, description="world name (default: the first one)")
    duel: Optional[DuelIn] = None


class GuessIn(_In):
    lat: Lat
    lon: Lon


class TopKIn(_In):
    lat: Lat
    lon: Lon
    p: Prob


class PredictionsIn(_In):
    game_id: GameId
    round: int = Field(ge=1, le=1000)
    topk: list[TopKIn] = Field(default_factory=list, max_length=50)
    heat: list[HeatPoint] = Field(
        default_factory=list, max_length=4096, description="[lat, lon, p] points of the probability heat map"
    )


class ViewOut(BaseModel):
    index: int
    url: str = Field(description="opaque image URL of this heading")
    heading_deg: Optional[int] = None


class GuessOut(BaseModel):
    seat: int
    lat: Optional[float]
    lon: Optional[float]
    dist_km: Optional[float]
    score: int
    damage: int
    timed_out: bool


class TruthOut(BaseModel):
    lat: float
    lon: float
    country: Optional[str]
    town: Optional[str]


class ResultOut(BaseModel):
    n: int
    multiplier: float
    truth: TruthOut
    guesses: list[GuessOut]


class YourGuessOut(BaseModel):
    lat: Optional[float]
    lon: Optional[float]
    timed_out: bool
    dist_km: Optional[float] = None
    score: Optional[int] = None


class RoundOut(BaseModel):
    n: int
    multiplier: float
    started: Optional[float]
    deadline: Optional[float] = Field(
        description="unix time after which the round times out (null: no limit)"
    )
    time_left_s: Optional[float]
    views: list[ViewOut]
    closed: bool
    guessed_seats: list[int]
    your_guess: Optional[YourGuessOut]
    result: Optional[ResultOut] = Field(description="truth and scores; null until the round is over")


class SeatOut(BaseModel):
    seat: int
    name: str
    kind: Optional[str] = None
    player_id: Optional[str] = None
    hp: Optional[int]
    total_score: int
    ready_round: Optional[int] = Field(description="null for a blind opponent")
    is_you: bool


class GameOut(BaseModel):
    id: str
    mode: str
    status: Literal["waiting", "active", "finished"]
    world: str
    rounds_total: int
    current_round: int
    timer_s: Optional[float]
    initial_hp: Optional[int] = Field(description="duels: starting HP of each side")
    version: int
    server_time: float
    you: Optional[int] = Field(description="your seat, null for spectators")
    players: list[SeatOut]
    round: Optional[RoundOut]
    winner_seat: Optional[int]
    draw: bool
    ended: Optional[str] = Field(
        None, description="why the game ended early: cancelled, expired, abandoned (null: played out)"
    )
    needs_verdict: bool = Field(False, description="blind: your 'person or bot?' answer is awaited")
    reveal: Optional[dict] = Field(None, description="blind: the opponent's kind, after your verdict")


class SummaryOut(GameOut):
    rounds: list[ResultOut]


class PredictionOut(BaseModel):
    seat: int
    name: str
    n: int
    topk: list[dict]
    heat: list[list[float]]


class OverlayOut(SummaryOut):
    predictions: list[PredictionOut]


class LobbyGameOut(BaseModel):
    id: str
    mode: str
    world: str
    rounds: int
    timer_s: Optional[float]
    created: float
    creator: Optional[str]
    expires: float = Field(description="unix time at which the entry expires")


class MyGameOut(BaseModel):
    id: str
    mode: str
    status: str
    world: str
    round: int
    rounds: int
    created: float
    needs_verdict: bool
