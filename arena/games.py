"""The arena's game state machine on top of SQLite: players, classic games, duels, blind duels.

Time is lazy: nothing runs in the background. Every call first ``_tick``s the game to the current clock
(closing rounds whose deadline plus a grace period has passed, starting the next duel round once both
players are ready or the intermission is over), all inside the same transaction as the call's own change.
State therefore lives entirely in the database, and a restarted server resumes every game where it stood.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from . import rules, views
from .db import Database
from .rounds import bump, close_round, insert_game, start_round
from .worlds import World

MODES = ("classic", "duel", "blind")
KINDS = ("human", "bot")
CLASSIC_ROUNDS = 5
DUEL_MAX_ROUNDS = 20
MAX_TOPK, MAX_HEAT = 50, 4096


class ArenaError(Exception):
    """A request the rules refuse; ``status`` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


def _not_found(what: str) -> ArenaError:
    return ArenaError(f"{what} not found", 404)


@dataclass(frozen=True)
class Player:
    id: str
    name: str
    kind: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class GameService:
    """All arena operations. Thread-safe: each call is one SQLite transaction under the database lock.

    ``clock`` and ``rng`` are injectable for tests; ``grace_s`` absorbs network latency after a deadline;
    ``intermission_s`` is how long a closed duel round waits for both players to press "next".
    """

    def __init__(
        self,
        db: Database,
        worlds: dict[str, World],
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        blind_kinds: tuple[str, ...] = KINDS,
        grace_s: float = 1.5,
        intermission_s: float = 10.0,
    ) -> None:
        if not worlds:
            raise ValueError("the arena needs at least one world")
        bad = [k for k in blind_kinds if k not in KINDS]
        if bad or not blind_kinds:
            raise ValueError(f"blind_kinds must be a non-empty subset of {KINDS}, got {blind_kinds!r}")
        self.db, self.worlds, self.clock = db, worlds, clock
        self.rng = rng or random.SystemRandom()  # unpredictable rounds and blind draws by default
        self.blind_kinds, self.grace_s, self.intermission_s = tuple(blind_kinds), grace_s, intermission_s

    # ---- players -------------------------------------------------------------------------------------------
    def create_player(self, name: str, kind: str = "human") -> tuple[Player, str]:
        """Register a player; returns it and its secret token (only its hash is stored)."""
        name = name.strip()
        if not 1 <= len(name) <= 40:
            raise ArenaError("name must be 1-40 characters", 422)
        if kind not in KINDS:
            raise ArenaError(f"kind must be one of {KINDS}", 422)
        player, token = Player(secrets.token_hex(6), name, kind), secrets.token_hex(24)
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO players (id, name, kind, token_sha256, rating, created) VALUES (?,?,?,?,?,?)",
                (player.id, name, kind, token_hash(token), rules.ELO_START, self.clock()),
            )
        return player, token

    def authenticate(self, token: str | None) -> Player | None:
        """The player owning ``token``; None when no token was sent; 401 for an unknown token."""
        if token is None:
            return None
        with self.db.read() as c:
            row = c.execute(
                "SELECT id, name, kind FROM players WHERE token_sha256=?", (token_hash(token),)
            ).fetchone()
        if row is None:
            raise ArenaError("unknown player token", 401)
        return Player(row["id"], row["name"], row["kind"])

    # ---- games ---------------------------------------------------------------------------------------------
    def create_game(
        self,
        player: Player,
        mode: str,
        rounds: int | None = None,
        timer_s: float | None = None,
        world: str | None = None,
        duel: rules.DuelOptions | None = None,
    ) -> str:
        if mode not in MODES:
            raise ArenaError(f"mode must be one of {MODES}", 422)
        if world is not None and world not in self.worlds:
            raise ArenaError(f"unknown world {world!r}; this arena serves {sorted(self.worlds)}", 422)
        w = self.worlds[world] if world is not None else next(iter(self.worlds.values()))
        if rounds is None:
            rounds = min(CLASSIC_ROUNDS if mode == "classic" else DUEL_MAX_ROUNDS, len(w.pool))
        if timer_s is not None and not (math.isfinite(timer_s) and 5.0 <= timer_s <= 3600.0):
            raise ArenaError("timer_s must be between 5 and 3600 seconds", 422)
        if mode == "blind" and player.kind != "human":
            raise ArenaError("blind games are started by human players (bots join them from the lobby)", 403)
        if rounds < 1:
            raise ArenaError("rounds must be >= 1", 422)
        try:
            locs = w.draw(rounds, self.rng)
        except ValueError as e:
            raise ArenaError(str(e), 422) from None
        opts = duel or rules.DuelOptions()
        blind_kind = self.rng.choice(self.blind_kinds) if mode == "blind" else None
        gid, now = secrets.token_hex(8), self.clock()
        with self.db.tx() as c:
            insert_game(c, gid, mode, w.name, locs, timer_s, opts, blind_kind, player.id, now)
            if mode == "classic":
                c.execute("UPDATE games SET status='active' WHERE id=?", (gid,))
                start_round(c, gid, 1, timer_s, now)
        return gid

    def join(self, player: Player, gid: str) -> dict[str, Any]:
        """Take the free seat of a waiting duel or blind game; the first round starts at once."""
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            if g["mode"] == "classic":
                raise ArenaError("classic games are single-player", 409)
            if self._seat_of(c, gid, player) is not None:
                raise ArenaError("you are already in this game", 409)
            if g["status"] != "waiting":
                raise ArenaError("this game already has two players", 409)
            if g["mode"] == "blind" and player.kind != g["blind_kind"]:
                raise ArenaError("this blind game is waiting for a different opponent", 409)
            opts = json.loads(g["options"])
            c.execute(
                "INSERT INTO seats (game_id, seat, player_id, hp, joined) VALUES (?,?,?,?,?)",
                (gid, 1, player.id, opts["initial_hp"], now),
            )
            c.execute("UPDATE games SET status='active' WHERE id=?", (gid,))
            start_round(c, gid, 1, g["timer_s"], now)
            return self._view(c, gid, 1, now)

    def lobby(self, player: Player) -> list[dict[str, Any]]:
        """Waiting games this player may join: open duels, and blind games that drew the player's kind."""
        with self.db.read() as c:
            rows = c.execute(
                "SELECT g.*, p.name AS creator_name FROM games g JOIN players p ON p.id=g.creator "
                "WHERE g.status='waiting' AND g.creator != ? "
                "AND (g.mode='duel' OR (g.mode='blind' AND g.blind_kind=?)) "
                "ORDER BY g.created",
                (player.id, player.kind),
            ).fetchall()
        return [
            {
                "id": r["id"],
                "mode": r["mode"],
                "world": r["world"],
                "rounds": r["n_rounds"],
                "timer_s": r["timer_s"],
                "created": r["created"],
                "creator": None if r["mode"] == "blind" else r["creator_name"],
            }
            for r in rows
        ]

    def state(self, player: Player | None, gid: str) -> dict[str, Any]:
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            return self._view(c, gid, self._seat_of(c, gid, player), now)

    def summary(self, player: Player | None, gid: str) -> dict[str, Any]:
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            return views.summary_view(c, g, self._seat_of(c, gid, player), self.worlds.get(g["world"]), now)

    def overlay(self, gid: str) -> dict[str, Any]:
        """Spectator view for the stream overlay: state, closed rounds, the current round's predictions."""
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            return {
                **views.summary_view(c, g, None, self.worlds.get(g["world"]), now),
                "predictions": views.predictions_view(c, g),
            }

    def guess(self, player: Player, gid: str, n: int, lat: float, lon: float) -> dict[str, Any]:
        if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
            raise ArenaError("lat must be in [-90, 90] and lon in [-180, 180]", 422)
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            seat = self._require_seat(c, gid, player)
            r = self._open_round(c, g, n)
            if c.execute(
                "SELECT 1 FROM guesses WHERE game_id=? AND n=? AND player_id=?", (gid, n, player.id)
            ).fetchone():
                raise ArenaError(f"you already guessed in round {n}", 409)
            dist_km, score = rules.score_guess(lat, lon, r["lat"], r["lon"])
            c.execute(
                "INSERT INTO guesses (game_id, n, player_id, lat, lon, dist_km, score, created) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (gid, n, player.id, lat, lon, dist_km, score, now),
            )
            n_seats = c.execute("SELECT COUNT(*) FROM seats WHERE game_id=?", (gid,)).fetchone()[0]
            n_guessed = c.execute(
                "SELECT COUNT(*) FROM guesses WHERE game_id=? AND n=?", (gid, n)
            ).fetchone()[0]
            if n_guessed >= n_seats:
                close_round(c, g, n, now)
            elif n_guessed == 1 and g["mode"] != "classic":
                countdown_s = json.loads(g["options"])["countdown_s"]
                deadline = (
                    now + countdown_s if r["deadline"] is None else min(r["deadline"], now + countdown_s)
                )
                c.execute("UPDATE rounds SET deadline=? WHERE game_id=? AND n=?", (deadline, gid, n))
            bump(c, gid)
            return self._view(c, gid, seat, now)

    def next_round(self, player: Player, gid: str) -> dict[str, Any]:
        """Classic: start the next round. Duels: mark this player ready (the round starts when both are)."""
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            seat = self._require_seat(c, gid, player)
            n = g["current_round"]
            r = c.execute("SELECT closed FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()
            if g["status"] != "active" or r is None or r["closed"] is None:
                raise ArenaError(
                    "the current round is not over"
                    if g["status"] == "active"
                    else f"the game is {g['status']}",
                    409,
                )
            if g["mode"] == "classic":
                start_round(c, gid, n + 1, g["timer_s"], now)
            else:
                c.execute("UPDATE seats SET ready_round=? WHERE game_id=? AND seat=?", (n, gid, seat))
                bump(c, gid)
                g, now = self._tick(c, gid)
            return self._view(c, gid, seat, now)

    def post_predictions(
        self, player: Player, gid: str, n: int, topk: list[dict[str, float]], heat: list[list[float]]
    ) -> None:
        """Store a player's (the bot's) top-k guesses and heat map for round ``n``, shown on the overlay."""
        if len(topk) > MAX_TOPK or len(heat) > MAX_HEAT:
            raise ArenaError(f"at most {MAX_TOPK} top-k entries and {MAX_HEAT} heat points", 422)
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            self._require_seat(c, gid, player)
            if not 1 <= n <= g["current_round"]:
                raise ArenaError(f"round {n} has not started", 409)
            c.execute(
                "INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?)",
                (gid, n, player.id, json.dumps(topk), json.dumps(heat), now),
            )
            bump(c, gid)

    def image(self, gid: str, n: int, k: int) -> bytes:
        """JPEG bytes (metadata stripped) of view ``k`` of round ``n``; only rounds that have started."""
        with self.db.tx() as c:
            g, _ = self._tick(c, gid)
            r = c.execute(
                "SELECT location_id, started FROM rounds WHERE game_id=? AND n=?", (gid, n)
            ).fetchone()
        world = self.worlds.get(g["world"])
        if r is None or r["started"] is None or world is None or not 0 <= k < world.n_views:
            raise _not_found("image")
        return world.image_bytes(r["location_id"], k)

    # ---- internals -----------------------------------------------------------------------------------------
    def _view(self, c, gid: str, seat: int | None, now: float) -> dict[str, Any]:
        g = c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone()
        return views.game_view(c, g, seat, self.worlds.get(g["world"]), now)

    def _seat_of(self, c, gid: str, player: Player | None) -> int | None:
        if player is None:
            return None
        row = c.execute("SELECT seat FROM seats WHERE game_id=? AND player_id=?", (gid, player.id)).fetchone()
        return None if row is None else row["seat"]

    def _require_seat(self, c, gid: str, player: Player) -> int:
        seat = self._seat_of(c, gid, player)
        if seat is None:
            raise ArenaError("you are not a player in this game", 403)
        return seat

    def _open_round(self, c, g, n: int):
        if g["status"] != "active":
            raise ArenaError(f"the game is {g['status']}", 409)
        if n != g["current_round"]:
            raise ArenaError(f"round {n} is not the current round ({g['current_round']})", 409)
        r = c.execute("SELECT * FROM rounds WHERE game_id=? AND n=?", (g["id"], n)).fetchone()
        if r["closed"] is not None:
            raise ArenaError(f"round {n} is over", 409)
        return r

    def _tick(self, c, gid: str):
        """Bring game ``gid`` up to the clock; returns (fresh game row, now). 404 for an unknown id."""
        now = self.clock()
        g = c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone()
        if g is None:
            raise _not_found(f"game {gid!r}")
        if g["status"] != "active":
            return g, now
        n = g["current_round"]
        r = c.execute("SELECT * FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()
        if r["closed"] is None and r["deadline"] is not None and now > r["deadline"] + self.grace_s:
            close_round(c, g, n, now)
        elif r["closed"] is not None and g["mode"] != "classic":
            ready = c.execute("SELECT MIN(ready_round) FROM seats WHERE game_id=?", (gid,)).fetchone()[0]
            if ready >= n or now >= r["closed"] + self.intermission_s:
                start_round(c, gid, n + 1, g["timer_s"], now)
        return c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone(), now
