"""JSON API routes of the arena. Handlers are thin: parse, authenticate, call ``GameService``, return.

Handlers are plain ``def`` functions: FastAPI runs them in its thread pool, where the blocking SQLite calls of
``GameService`` belong. Players authenticate with the ``X-Player-Token`` header returned by POST /api/players.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from . import rules, schemas, stats
from .games import ArenaError, GameService, Player

router = APIRouter(prefix="/api")

GID = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="game id")]
ROUND = Annotated[int, Path(ge=1, le=1000)]
TOKEN = Annotated[Optional[str], Header(alias="X-Player-Token", max_length=128)]
BOT_TOKEN = Annotated[Optional[str], Header(alias="X-Bot-Token", max_length=256)]
OVERLAY_KEY = Annotated[Optional[str], Header(alias="X-Overlay-Key", max_length=128)]


def service(request: Request) -> GameService:
    return request.app.state.service


SVC = Annotated[GameService, Depends(service)]


def optional_player(svc: SVC, token: TOKEN = None) -> Player | None:
    return svc.authenticate(token)


def required_player(svc: SVC, token: TOKEN = None) -> Player:
    player = svc.authenticate(token)
    if player is None:
        raise ArenaError("send your player token in the X-Player-Token header", 401)
    return player


ME = Annotated[Player, Depends(required_player)]
VIEWER = Annotated[Optional[Player], Depends(optional_player)]


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/worlds")
def worlds(svc: SVC) -> list[dict[str, Any]]:
    return [
        {"name": w.name, "locations": len(w.pool), "views": w.n_views, "image_size": w.image_size}
        for w in svc.worlds.values()
    ]


LAT_Q = Annotated[float, Query(ge=-90.0, le=90.0, allow_inf_nan=False)]
LON_Q = Annotated[float, Query(ge=-540.0, le=540.0, allow_inf_nan=False)]
ZOOM_Q = Annotated[float, Query(ge=0.0, le=22.0, allow_inf_nan=False)]


def _geo(request: Request):
    layers = getattr(request.app.state, "geo", None)
    if layers is None:
        from .geo import GeoLayers

        layers = request.app.state.geo = GeoLayers()
    return layers


def _geo_call(fn, *args) -> list:
    try:
        return fn(*args)
    except FileNotFoundError as e:
        raise ArenaError(str(e), 404) from None


@router.get("/geo/places")
def geo_places(request: Request, s: LAT_Q, w: LON_Q, n: LAT_Q, e: LON_Q, z: ZOOM_Q) -> dict[str, Any]:
    """Town labels for the guess map view (none below zoom 4): [[lat, lon, name, population], ...]."""
    return {"places": _geo_call(_geo(request).places, s, w, n, e, z)}


@router.get("/geo/admin1")
def geo_admin1(request: Request, s: LAT_Q, w: LON_Q, n: LAT_Q, e: LON_Q, z: ZOOM_Q) -> dict[str, Any]:
    """Admin-1 border lines for the guess map view (none below zoom 4): [[[lat, lon], ...], ...]."""
    return {"lines": _geo_call(_geo(request).admin1, s, w, n, e, z)}


@router.post("/players", status_code=201, response_model=schemas.PlayerOut)
def create_player(body: schemas.PlayerIn, svc: SVC, bot_token: BOT_TOKEN = None) -> dict[str, Any]:
    player, token = svc.create_player(body.name, body.kind, bot_token)
    return {"id": player.id, "name": player.name, "kind": player.kind, "token": token}


@router.get("/me", response_model=schemas.PlayerOut)
def me(player: ME) -> dict[str, Any]:
    return {"id": player.id, "name": player.name, "kind": player.kind}


@router.post("/games", status_code=201, response_model=schemas.GameOut)
def create_game(body: schemas.GameIn, player: ME, svc: SVC) -> dict[str, Any]:
    duel = rules.DuelOptions(**body.duel.model_dump()) if body.duel else None
    gid = svc.create_game(player, body.mode, body.rounds, body.timer_s, body.world, duel)
    return svc.state(player, gid)


@router.get("/lobby", response_model=list[schemas.LobbyGameOut])
def lobby(player: ME, svc: SVC) -> list[dict[str, Any]]:
    return svc.lobby(player)


@router.get("/me/games", response_model=list[schemas.MyGameOut])
def my_games(player: ME, svc: SVC) -> list[dict[str, Any]]:
    return svc.my_games(player)


@router.post("/games/{gid}/cancel", response_model=schemas.GameOut)
def cancel(gid: GID, player: ME, svc: SVC) -> dict[str, Any]:
    return svc.cancel(player, gid)


@router.post("/games/{gid}/verdict", response_model=schemas.GameOut)
def verdict(gid: GID, body: schemas.VerdictIn, player: ME, svc: SVC) -> dict[str, Any]:
    return svc.verdict(player, gid, body.verdict)


@router.get("/games/{gid}/overlay-link")
def overlay_link(gid: GID, player: ME, svc: SVC) -> dict[str, str]:
    return svc.overlay_link(player, gid)


@router.get("/games/{gid}", response_model=schemas.GameOut)
def game_state(gid: GID, viewer: VIEWER, svc: SVC) -> dict[str, Any]:
    return svc.state(viewer, gid)


@router.post("/games/{gid}/join", response_model=schemas.GameOut)
def join(gid: GID, player: ME, svc: SVC) -> dict[str, Any]:
    return svc.join(player, gid)


@router.get("/games/{gid}/round", response_model=Optional[schemas.RoundOut])
def current_round(gid: GID, viewer: VIEWER, svc: SVC) -> dict[str, Any] | None:
    return svc.state(viewer, gid)["round"]


@router.post("/games/{gid}/rounds/{n}/guess", response_model=schemas.GameOut)
def guess(gid: GID, n: ROUND, body: schemas.GuessIn, player: ME, svc: SVC) -> dict[str, Any]:
    return svc.guess(player, gid, n, body.lat, body.lon)


@router.get("/games/{gid}/rounds/{n}/result", response_model=schemas.ResultOut)
def round_result(gid: GID, n: ROUND, viewer: VIEWER, svc: SVC) -> dict[str, Any]:
    for r in svc.summary(viewer, gid)["rounds"]:
        if r["n"] == n:
            return r
    raise ArenaError(f"round {n} is not over (or does not exist)", 409)


@router.get(
    "/games/{gid}/rounds/{n}/views/{k}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def view_image(gid: GID, n: ROUND, k: Annotated[int, Path(ge=0, le=64)], svc: SVC) -> Response:
    return Response(
        svc.image(gid, n, k), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.post("/games/{gid}/next", response_model=schemas.GameOut)
def next_round(gid: GID, player: ME, svc: SVC) -> dict[str, Any]:
    return svc.next_round(player, gid)


@router.post("/games/{gid}/abandon", response_model=schemas.GameOut)
def abandon(gid: GID, player: ME, svc: SVC) -> dict[str, Any]:
    return svc.abandon(player, gid)


@router.get("/games/{gid}/summary", response_model=schemas.SummaryOut)
def summary(gid: GID, viewer: VIEWER, svc: SVC) -> dict[str, Any]:
    return svc.summary(viewer, gid)


@router.get("/games/{gid}/overlay", response_model=schemas.OverlayOut)
def overlay(gid: GID, viewer: VIEWER, svc: SVC, key: OVERLAY_KEY = None) -> dict[str, Any]:
    if not svc.overlay_allowed(gid, key, viewer):
        raise ArenaError("the overlay needs its key (X-Overlay-Key; the bot's seat gets the link)", 403)
    return svc.overlay(gid)


@router.get("/games/{gid}/chat")
def chat_board(gid: GID, request: Request, viewer: VIEWER, svc: SVC, key: OVERLAY_KEY = None) -> dict[str, Any]:
    """The chat's guesses and leaderboard for the stream overlay (overlay key, like the overlay itself); the
    chat follows the game whose overlay asks. Blind games have no chat."""
    if not svc.overlay_allowed(gid, key, viewer):
        raise ArenaError("the chat board needs the overlay key (X-Overlay-Key)", 403)
    chat = request.app.state.chat
    if svc.state(None, gid)["mode"] == "blind":
        return {"game_id": gid, "following": False, "open_round": None, "open_round_guesses": 0, "rounds": [],
                "leaderboard": [], "viewers": 0}
    chat.follow(gid)
    return chat.board(gid)


@router.post("/predictions", status_code=204, response_class=Response)
def post_predictions(body: schemas.PredictionsIn, player: ME, svc: SVC) -> Response:
    svc.post_predictions(
        player, body.game_id, body.round, [t.model_dump() for t in body.topk], [list(h) for h in body.heat]
    )
    return Response(status_code=204)


@router.get("/stats")
def all_stats(svc: SVC) -> dict[str, Any]:
    svc.reveal_due()
    with svc.db.read() as c:
        return stats.all_stats(c)


@router.get("/stats/match")
def match_stats(request: Request, svc: SVC) -> dict[str, Any]:
    """The statistics of ``pigeon stats`` (docs/stats.md: per-country hit rates and usual wrong guesses, score
    histogram, streaks, opponents, matches, duel HP curves, rating history) over the public games."""
    svc.reveal_due()
    state = request.app.state
    if not hasattr(state, "country_at"):
        from model.geo.geodata import load_or_none

        g = load_or_none("country hit rates on the stats page")
        state.country_at = None if g is None else g.country_at
    with svc.db.read() as c:
        return stats.match_stats(c, source="arena database", country_at=state.country_at)


@router.get("/leaderboard")
def leaderboard(svc: SVC) -> list[dict[str, Any]]:
    svc.reveal_due()
    with svc.db.read() as c:
        return stats.leaderboard(c)
