"""The arena's game state machine on top of SQLite: players, classic games, duels, blind duels.

Time is lazy: nothing runs in the background. Every call first ``_tick``s the game to the current clock
(closing rounds whose deadline plus a grace period has passed, starting the next duel round once both
players are ready or the intermission is over), all inside the same transaction as the call's own change.
State therefore lives entirely in the database, and a restarted server resumes every game where it stood.

Blind duels hide the opponent's kind until the game is over and each human seat has answered "person or bot?"
(``verdict``): one lobby entry and one join answer for every kind, no kind/name in any view, no stats or rating
change until the reveal, a fixed intermission between rounds, and a bot's guess held back (``held_guesses``)
until a delay drawn from the recorded human guess times of that world has passed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from . import rules, views
from .db import Database
from .rounds import bump, close_round, finish, insert_game, redraw_rounds, reveal, start_round
from .worlds import World, reencode_view

MODES = ("classic", "duel", "blind")
KINDS = ("human", "bot")
CLASSIC_ROUNDS = 5
DUEL_MAX_ROUNDS = 20
MAX_TOPK, MAX_HEAT = 50, 4096
# bot guess delays in blind games: drawn from the recorded human guess times of the world once it has this many;
# before that from a log-normal prior (median 20 s, sigma 0.5: 90 % between 9 and 46 s)
MIN_HUMAN_SAMPLES = 10
PRIOR_MEDIAN_S, PRIOR_SIGMA = 20.0, 0.5
HUMAN_SAMPLE_LIMIT = 2000   # the most recent human guesses of a world that the delay is drawn from


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
    ``intermission_s`` is how long a closed duel round waits for both players to press "next" (blind duels
    always wait exactly that long: an opponent that is always ready at once would give itself away).
    ``bot_token`` is the operator's secret a client must show to register a bot player (None: no bots);
    ``lobby_ttl_s``: a game nobody joined expires after this; ``absent_rounds``: missed rounds in a row that
    end a duel as abandoned (unrated); ``idle_s``: an untimed duel round nobody guesses in ends the game as
    abandoned; ``verdict_window_s``: a finished blind game becomes public this long after its end even without
    every verdict.
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
        bot_token: str | None = None,
        lobby_ttl_s: float = 300.0,
        absent_rounds: int = 2,
        idle_s: float = 900.0,
        verdict_window_s: float = 600.0,
        secret: bytes | None = None,
    ) -> None:
        if not worlds:
            raise ValueError("the arena needs at least one world")
        bad = [k for k in blind_kinds if k not in KINDS]
        if bad or not blind_kinds:
            raise ValueError(f"blind_kinds must be a non-empty subset of {KINDS}, got {blind_kinds!r}")
        self.db, self.worlds, self.clock = db, worlds, clock
        self.rng = rng or random.SystemRandom()  # unpredictable rounds and blind draws by default
        self.blind_kinds, self.grace_s, self.intermission_s = tuple(blind_kinds), grace_s, intermission_s
        if bot_token is not None and len(bot_token) < 16:
            raise ValueError("the arena's bot token must be at least 16 characters")
        self.bot_token = bot_token
        self.lobby_ttl_s, self.absent_rounds, self.idle_s = lobby_ttl_s, absent_rounds, idle_s
        self.verdict_window_s = verdict_window_s
        self.secret = secret or secrets.token_bytes(32)  # overlay keys; a restart issues new ones
        self._views = functools.lru_cache(maxsize=512)(self._reencoded)

    # ---- players -------------------------------------------------------------------------------------------
    def create_player(self, name: str, kind: str = "human", bot_token: str | None = None) -> tuple[Player, str]:
        """Register a player; returns it and its secret token (only its hash is stored).

        A bot needs the operator's ``bot_token`` (403 otherwise). A name already taken (case-insensitive) gets
        a visible discriminator: "Alice" becomes "Alice #4821"."""
        name = " ".join(name.split())
        if not 1 <= len(name) <= 40:
            raise ArenaError("name must be 1-40 characters", 422)
        if kind not in KINDS:
            raise ArenaError(f"kind must be one of {KINDS}", 422)
        if kind == "bot" and not self.bot_token_ok(bot_token):
            raise ArenaError("bot players need the arena operator's bot token (X-Bot-Token header)", 403)
        token = secrets.token_hex(24)
        with self.db.tx() as c:
            name = self._unique_name(c, name)
            player = Player(secrets.token_hex(6), name, kind)
            c.execute(
                "INSERT INTO players (id, name, kind, token_sha256, rating, created) VALUES (?,?,?,?,?,?)",
                (player.id, name, kind, token_hash(token), rules.ELO_START, self.clock()),
            )
        return player, token

    def bot_token_ok(self, token: str | None) -> bool:
        """True when ``token`` is the operator's bot token (constant-time comparison)."""
        if self.bot_token is None or token is None:
            return False
        return hmac.compare_digest(token.encode("utf-8"), self.bot_token.encode("utf-8"))

    def _unique_name(self, c, name: str) -> str:
        def taken(n: str) -> bool:
            return c.execute("SELECT 1 FROM players WHERE lower(name)=lower(?)", (n,)).fetchone() is not None

        if not taken(name):
            return name
        for _ in range(50):
            cand = f"{name[:34]} #{self.rng.randint(1000, 9999)}"
            if not taken(cand):
                return cand
        raise ArenaError("could not find a free discriminator for this name; pick another name", 409)

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
        if rounds > len(w.pool):
            raise ArenaError(
                f"world {w.name!r} has {len(w.pool)} playable locations; ask for at most {len(w.pool)} rounds", 422
            )
        opts = duel or rules.DuelOptions()
        gid, now = secrets.token_hex(8), self.clock()
        with self.db.tx() as c:
            locs = w.draw(rounds, self.rng, self._seen(c, [player.id], w.name))
            seed = secrets.token_hex(16)
            insert_game(c, gid, mode, w.name, locs, timer_s, opts, None, player.id, now, seed)
            if mode == "classic":
                c.execute("UPDATE games SET status='active' WHERE id=?", (gid,))
                start_round(c, gid, 1, timer_s, now)
        return gid

    def join(self, player: Player, gid: str) -> dict[str, Any]:
        """Take the free seat of a waiting duel or blind game; the first round starts at once. Blind games take
        whoever comes first, of any kind allowed (``blind_kinds``), with the same answers for every kind; the
        rounds are re-drawn so that neither player has seen them."""
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            if g["mode"] == "classic":
                raise ArenaError("classic games are single-player", 409)
            if self._seat_of(c, gid, player) is not None:
                raise ArenaError("you are already in this game", 409)
            if g["status"] != "waiting":
                why = g["ended"] or "started"
                raise ArenaError(f"this game can no longer be joined ({why})", 409)
            if g["mode"] == "blind" and player.kind not in self.blind_kinds:
                raise ArenaError("blind games on this arena do not take this player", 409)
            w = self.worlds.get(g["world"])
            if w is not None:
                seen = self._seen(c, [g["creator"], player.id], w.name)
                redraw_rounds(c, gid, w.draw(g["n_rounds"], self.rng, seen))
            if g["mode"] == "blind":
                c.execute("UPDATE games SET blind_kind=? WHERE id=?", (player.kind, gid))
            opts = json.loads(g["options"])
            c.execute(
                "INSERT INTO seats (game_id, seat, player_id, hp, joined) VALUES (?,?,?,?,?)",
                (gid, 1, player.id, opts["initial_hp"], now),
            )
            c.execute("UPDATE games SET status='active' WHERE id=?", (gid,))
            start_round(c, gid, 1, g["timer_s"], now)
            return self._view(c, gid, 1, now)

    def lobby(self, player: Player) -> list[dict[str, Any]]:
        """Waiting games this player may join: open duels and blind duels (the same list for every kind),
        except those older than ``lobby_ttl_s`` (they expire)."""
        with self.db.read() as c:
            rows = c.execute(
                "SELECT g.*, p.name AS creator_name FROM games g JOIN players p ON p.id=g.creator "
                "WHERE g.status='waiting' AND g.creator != ? AND g.mode IN ('duel', 'blind') AND g.created > ? "
                "ORDER BY g.created",
                (player.id, self.clock() - self.lobby_ttl_s),
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
                "expires": r["created"] + self.lobby_ttl_s,
            }
            for r in rows
        ]

    def my_games(self, player: Player) -> list[dict[str, Any]]:
        """The player's games to go back to: waiting, active, and finished blind games awaiting its verdict."""
        with self.db.tx() as c:
            rows = c.execute(
                "SELECT g.id FROM games g JOIN seats s ON s.game_id=g.id AND s.player_id=? "
                "WHERE g.status IN ('waiting', 'active') OR (g.mode='blind' AND g.revealed IS NULL "
                "AND g.ended IS NULL AND g.status='finished' AND NOT EXISTS (SELECT 1 FROM verdicts v "
                "WHERE v.game_id=g.id AND v.player_id=?)) ORDER BY g.created DESC LIMIT 20",
                (player.id, player.id),
            ).fetchall()
            out = []
            for r in rows:
                g, now = self._tick(c, r["id"])
                if g["status"] == "finished" and not views.needs_verdict(c, g, player.id, player.kind):
                    continue
                out.append({
                    "id": g["id"], "mode": g["mode"], "status": g["status"], "world": g["world"],
                    "round": g["current_round"], "rounds": g["n_rounds"], "created": g["created"],
                    "needs_verdict": g["status"] == "finished",
                })
            return out

    def cancel(self, player: Player, gid: str) -> dict[str, Any]:
        """The creator withdraws a game nobody has joined yet (it leaves the lobby; nothing is rated)."""
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            seat = self._require_seat(c, gid, player)
            if g["status"] != "waiting":
                raise ArenaError(f"only a game still waiting for an opponent can be cancelled (it is {g['status']})",
                                 409)
            finish(c, gid, None, now, ended="cancelled")
            return self._view(c, gid, seat, now)

    def verdict(self, player: Player, gid: str, verdict: str) -> dict[str, Any]:
        """A human seat's answer to "was your opponent a person or a bot?" after a blind game; the answer is
        final. Returns the reveal: the opponent's kind and name and whether the verdict was right."""
        if verdict not in KINDS:
            raise ArenaError(f"verdict must be one of {KINDS}", 422)
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            seat = self._require_seat(c, gid, player)
            if g["mode"] != "blind":
                raise ArenaError("only blind games ask for a verdict", 409)
            if g["status"] != "finished":
                raise ArenaError("the verdict comes after the game", 409)
            if player.kind != "human":
                raise ArenaError("only human players give verdicts", 403)
            if c.execute("SELECT 1 FROM verdicts WHERE game_id=? AND player_id=?", (gid, player.id)).fetchone():
                raise ArenaError("you already gave your verdict for this game", 409)
            opp = c.execute(
                "SELECT p.kind FROM seats s JOIN players p ON p.id=s.player_id WHERE s.game_id=? AND s.seat!=?",
                (gid, seat),
            ).fetchone()
            if opp is None:
                raise ArenaError("this game never had an opponent", 409)
            c.execute("INSERT INTO verdicts VALUES (?,?,?,?,?)", (gid, player.id, verdict, opp["kind"], now))
            humans_left = c.execute(
                "SELECT COUNT(*) FROM seats s JOIN players p ON p.id=s.player_id WHERE s.game_id=? AND "
                "p.kind='human' AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.game_id=s.game_id AND "
                "v.player_id=s.player_id)",
                (gid,),
            ).fetchone()[0]
            if humans_left == 0:
                reveal(c, gid, now)
            return self._view(c, gid, seat, now)

    def reveal_due(self) -> int:
        """Reveal finished blind games whose verdict window is over (called before stats are read)."""
        now = self.clock()
        with self.db.tx() as c:
            rows = c.execute(
                "SELECT id FROM games WHERE mode='blind' AND status='finished' AND revealed IS NULL AND finished < ?",
                (now - self.verdict_window_s,),
            ).fetchall()
            for r in rows:
                reveal(c, r["id"], now)
        return len(rows)

    def overlay_key(self, gid: str) -> str:
        """The secret that opens game ``gid``'s stream overlay (HMAC of the game id)."""
        return hmac.new(self.secret, f"overlay:{gid}".encode(), hashlib.sha256).hexdigest()[:32]

    def overlay_link(self, player: Player, gid: str) -> dict[str, str]:
        """The overlay URL with its key, for a bot seated in the game (the operator's stream)."""
        with self.db.read() as c:
            if player.kind != "bot" or self._seat_of(c, gid, player) is None:
                raise ArenaError("only the game's bot seat gets the overlay link", 403)
        return {"url": f"/overlay/{gid}#key={self.overlay_key(gid)}"}

    def overlay_allowed(self, gid: str, key: str | None, player: Player | None) -> bool:
        if key is not None and hmac.compare_digest(key.encode(), self.overlay_key(gid).encode()):
            return True
        if player is None or player.kind != "bot":
            return False
        with self.db.read() as c:
            return self._seat_of(c, gid, player) is not None

    def state(self, player: Player | None, gid: str) -> dict[str, Any]:
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            return self._view(c, gid, self._seat_of(c, gid, player), now)

    def overlay(self, gid: str) -> dict[str, Any]:
        """The stream overlay's view (callers check the overlay key): state, closed rounds, and the bot's
        belief for the current round as soon as it is posted (blind games: none until revealed)."""
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
            if self._has_guessed(c, gid, n, player.id):
                raise ArenaError(f"you already guessed in round {n}", 409)
            if g["mode"] == "blind" and player.kind == "bot":
                release = r["started"] + self._human_delay(c, g["world"])
                if release > now:  # held back: nobody else can tell it arrived early
                    c.execute(
                        "INSERT INTO held_guesses VALUES (?,?,?,?,?,?,?)", (gid, n, player.id, lat, lon, release, now)
                    )
                    return self._view(c, gid, seat, now)
            self._record_guess(c, g, n, player.id, lat, lon, now)
            return self._view(c, gid, seat, now)

    def _record_guess(self, c, g, n: int, player_id: str, lat: float, lon: float, at: float) -> None:
        """Store a guess made at time ``at``: close the round when everyone guessed, else start the countdown."""
        gid = g["id"]
        r = c.execute("SELECT * FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()
        dist_km, score = rules.score_guess(lat, lon, r["lat"], r["lon"])
        c.execute(
            "INSERT INTO guesses (game_id, n, player_id, lat, lon, dist_km, score, created) VALUES (?,?,?,?,?,?,?,?)",
            (gid, n, player_id, lat, lon, dist_km, score, at),
        )
        n_seats = c.execute("SELECT COUNT(*) FROM seats WHERE game_id=?", (gid,)).fetchone()[0]
        n_guessed = c.execute("SELECT COUNT(*) FROM guesses WHERE game_id=? AND n=?", (gid, n)).fetchone()[0]
        if n_guessed >= n_seats:
            close_round(c, g, n, at, self.absent_rounds)
        elif n_guessed == 1 and g["mode"] != "classic":
            countdown_s = json.loads(g["options"])["countdown_s"]
            deadline = at + countdown_s if r["deadline"] is None else min(r["deadline"], at + countdown_s)
            c.execute("UPDATE rounds SET deadline=? WHERE game_id=? AND n=?", (deadline, gid, n))
        bump(c, gid)

    def _has_guessed(self, c, gid: str, n: int, player_id: str) -> bool:
        return any(
            c.execute(f"SELECT 1 FROM {t} WHERE game_id=? AND n=? AND player_id=?", (gid, n, player_id)).fetchone()
            for t in ("guesses", "held_guesses")
        )

    def human_times(self, c, world: str) -> list[float]:
        """Seconds from round start to guess of the recent human guesses (not time-outs) in ``world``."""
        rows = c.execute(
            "SELECT gu.created - r.started FROM guesses gu JOIN rounds r ON r.game_id=gu.game_id AND r.n=gu.n "
            "JOIN games g ON g.id=gu.game_id JOIN players p ON p.id=gu.player_id WHERE p.kind='human' "
            "AND g.world=? AND gu.timed_out=0 AND r.closed IS NOT NULL ORDER BY gu.created DESC LIMIT ?",
            (world, HUMAN_SAMPLE_LIMIT),
        ).fetchall()
        return [float(r[0]) for r in rows if r[0] is not None and r[0] >= 0]

    def _human_delay(self, c, world: str) -> float:
        """A bot's guess delay in a blind game: one recorded human guess time of the world, drawn at random
        (the log-normal prior while fewer than MIN_HUMAN_SAMPLES are recorded)."""
        times = self.human_times(c, world)
        if len(times) >= MIN_HUMAN_SAMPLES:
            return self.rng.choice(times)
        return math.exp(math.log(PRIOR_MEDIAN_S) + PRIOR_SIGMA * self.rng.gauss(0.0, 1.0))

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
                if g["mode"] == "duel":  # blind duels wait the fixed intermission: readiness shows nothing
                    bump(c, gid)
                    g, now = self._tick(c, gid)
            return self._view(c, gid, seat, now)

    def abandon(self, player: Player, gid: str) -> dict[str, Any]:
        """The player gives up their seat (a bot that cannot go on): the open round closes (missing guesses time
        out), and a game still running ends; in a duel the other seat wins. Idempotent on a finished game."""
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            seat = self._require_seat(c, gid, player)
            if g["status"] == "active":
                n = g["current_round"]
                r = c.execute("SELECT closed FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()
                if r is not None and r["closed"] is None:
                    close_round(c, g, n, now)
                g = c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone()
            if g["status"] != "finished":
                others = [s["seat"] for s in c.execute("SELECT seat FROM seats WHERE game_id=?", (gid,))
                          if s["seat"] != seat]
                winner = others[0] if g["mode"] != "classic" and len(others) == 1 else None
                c.execute("UPDATE games SET status='finished', finished=?, winner_seat=? WHERE id=?",
                          (now, winner, gid))
                bump(c, gid)
            return self._view(c, gid, seat, now)

    def post_predictions(
        self, player: Player, gid: str, n: int, topk: list[dict[str, float]], heat: list[list[float]]
    ) -> None:
        """Store the bot's top-k guesses and heat map for the current round ``n``, shown on the stream overlay.

        Only a bot seated in the game may post, and only *before* its guess for the round is locked (the
        overlay shows the belief the guess came from while the round is live). The game's ``version`` does not
        change: the opponent's page must not see when a belief arrives."""
        if len(topk) > MAX_TOPK or len(heat) > MAX_HEAT:
            raise ArenaError(f"at most {MAX_TOPK} top-k entries and {MAX_HEAT} heat points", 422)
        if player.kind != "bot":
            raise ArenaError("only a bot seat posts its belief", 403)
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            self._require_seat(c, gid, player)
            r = self._open_round(c, g, n)
            if self._has_guessed(c, gid, r["n"], player.id):
                raise ArenaError("post the belief before locking the guess of the round", 409)
            c.execute(
                "INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?)",
                (gid, n, player.id, json.dumps(topk), json.dumps(heat), now),
            )

    def image(self, gid: str, n: int, k: int) -> bytes:
        """JPEG bytes of view ``k`` of round ``n``, re-encoded for this game (see ``worlds.reencode_view``);
        only rounds that have started."""
        with self.db.tx() as c:
            g, _ = self._tick(c, gid)
            r = c.execute(
                "SELECT location_id, started FROM rounds WHERE game_id=? AND n=?", (gid, n)
            ).fetchone()
        world = self.worlds.get(g["world"])
        if r is None or r["started"] is None or world is None or not 0 <= k < world.n_views:
            raise _not_found("image")
        return self._views(g["world"], r["location_id"], k, f"{g['seed'] or gid}|{n}|{k}")

    def _reencoded(self, world: str, loc_id: str, k: int, key: str) -> bytes:
        w = self.worlds[world]
        try:
            return reencode_view(w.image_bytes(loc_id, k), self.secret + key.encode())
        except ValueError as e:
            raise ArenaError(f"this view cannot be served: {e}", 500) from None

    def _seen(self, c, player_ids: list[str], world: str) -> set[str]:
        q = ",".join("?" * len(player_ids))
        rows = c.execute(
            f"SELECT location_id FROM seen WHERE world=? AND player_id IN ({q})", (world, *player_ids)
        ).fetchall()
        return {r[0] for r in rows}

    # ---- internals -----------------------------------------------------------------------------------------
    def _view(self, c, gid: str, seat: int | None, now: float) -> dict[str, Any]:
        g = c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone()
        return views.game_view(c, g, seat, self.worlds.get(g["world"]), now)

    def summary(self, player: Player | None, gid: str) -> dict[str, Any]:
        with self.db.tx() as c:
            g, now = self._tick(c, gid)
            return views.summary_view(c, g, self._seat_of(c, gid, player), self.worlds.get(g["world"]), now)

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
        if g["status"] == "waiting" and now > g["created"] + self.lobby_ttl_s:
            finish(c, gid, None, now, ended="expired")  # nobody came: no game, no rating
        elif g["status"] == "finished" and g["mode"] == "blind" and g["revealed"] is None and (
            now > g["finished"] + self.verdict_window_s
        ):
            reveal(c, gid, now)
        if g["status"] != "active":
            return c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone(), now
        n = g["current_round"]
        r = c.execute("SELECT * FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()
        if r["closed"] is None:
            self._release_held(c, g, r, now)
            r = c.execute("SELECT * FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()
            g = c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone()
        if r["closed"] is None and r["deadline"] is not None and now > r["deadline"] + self.grace_s:
            close_round(c, g, n, now, self.absent_rounds)
        elif r["closed"] is None and r["deadline"] is None and g["mode"] != "classic" and (
            now > r["started"] + self.idle_s
        ):
            finish(c, gid, None, now, ended="abandoned")  # nobody guessed for idle_s: both have left
        elif r["closed"] is not None and g["status"] == "active" and g["mode"] != "classic":
            ready = c.execute("SELECT MIN(ready_round) FROM seats WHERE game_id=?", (gid,)).fetchone()[0]
            both_ready = g["mode"] == "duel" and ready >= n
            if both_ready or now >= r["closed"] + self.intermission_s:
                start_round(c, gid, n + 1, g["timer_s"], now)
        return c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone(), now

    def _release_held(self, c, g, r, now: float) -> None:
        """Turn held bot guesses whose time has come into guesses, timed at their release; a countdown or time
        limit pulls the release forward so that a held guess never misses its deadline."""
        for h in c.execute(
            "SELECT * FROM held_guesses WHERE game_id=? AND n=? ORDER BY release_at", (g["id"], r["n"])
        ).fetchall():
            r = c.execute("SELECT * FROM rounds WHERE game_id=? AND n=?", (g["id"], r["n"])).fetchone()
            at = h["release_at"] if r["deadline"] is None else min(h["release_at"], r["deadline"] - 1.0)
            at = max(at, h["created"])
            if at > now:
                continue
            c.execute("DELETE FROM held_guesses WHERE game_id=? AND n=? AND player_id=?",
                      (g["id"], r["n"], h["player_id"]))
            self._record_guess(c, g, r["n"], h["player_id"], h["lat"], h["lon"], at)
