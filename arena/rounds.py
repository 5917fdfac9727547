"""Round bookkeeping inside an open transaction: start, close (score, damage, finish), rate.

Plain functions over a ``sqlite3.Connection`` so ``GameService`` stays a thin layer of checks; each function
bumps the game's ``version`` so polling clients see the change.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict

from model.formats.dataset import Location

from . import rules


def insert_game(
    c: sqlite3.Connection,
    gid: str,
    mode: str,
    world: str,
    locs: list[Location],
    timer_s: float | None,
    opts: rules.DuelOptions,
    blind_kind: str | None,
    creator: str,
    now: float,
) -> None:
    """A new game waiting for players: its row, one row per (pre-drawn) round, the creator in seat 0."""
    game = (
        gid,
        mode,
        "waiting",
        world,
        len(locs),
        timer_s,
        json.dumps(asdict(opts)),
        blind_kind,
        creator,
        now,
    )
    c.execute(
        "INSERT INTO games (id, mode, status, world, n_rounds, timer_s, options, blind_kind, creator, "
        "created) VALUES (?,?,?,?,?,?,?,?,?,?)",
        game,
    )
    for n, loc in enumerate(locs, start=1):
        mult = 1.0 if mode == "classic" else rules.round_multiplier(n, opts)
        row = (
            gid,
            n,
            loc.id,
            loc.lat,
            loc.lon,
            loc.aux.get("country") or None,
            loc.aux.get("town") or None,
            mult,
        )
        c.execute(
            "INSERT INTO rounds (game_id, n, location_id, lat, lon, country, town, multiplier) "
            "VALUES (?,?,?,?,?,?,?,?)",
            row,
        )
    hp = None if mode == "classic" else opts.initial_hp
    c.execute(
        "INSERT INTO seats (game_id, seat, player_id, hp, joined) VALUES (?,?,?,?,?)",
        (gid, 0, creator, hp, now),
    )


def bump(c: sqlite3.Connection, gid: str) -> None:
    """Mark game ``gid`` changed (clients poll ``version``)."""
    c.execute("UPDATE games SET version=version+1 WHERE id=?", (gid,))


def start_round(c: sqlite3.Connection, gid: str, n: int, timer_s: float | None, now: float) -> None:
    """Make round ``n`` current, started at ``now``, timing out after ``timer_s`` (None: no limit)."""
    deadline = None if timer_s is None else now + timer_s
    c.execute("UPDATE rounds SET started=?, deadline=? WHERE game_id=? AND n=?", (now, deadline, gid, n))
    c.execute("UPDATE games SET current_round=?, version=version+1 WHERE id=?", (n, gid))


def close_round(c: sqlite3.Connection, g: sqlite3.Row, n: int, now: float) -> None:
    """Score round ``n`` (missing guesses time out with 0), apply duel damage, maybe finish the game."""
    gid = g["id"]
    seats = c.execute("SELECT * FROM seats WHERE game_id=? ORDER BY seat", (gid,)).fetchall()
    for s in seats:
        c.execute(
            "INSERT OR IGNORE INTO guesses (game_id, n, player_id, score, timed_out, created) "
            "VALUES (?,?,?,0,1,?)",
            (gid, n, s["player_id"], now),
        )
    scores = [
        c.execute(
            "SELECT score FROM guesses WHERE game_id=? AND n=? AND player_id=?", (gid, n, s["player_id"])
        ).fetchone()[0]
        for s in seats
    ]
    hp = [s["hp"] for s in seats]
    if g["mode"] != "classic":
        mult = c.execute("SELECT multiplier FROM rounds WHERE game_id=? AND n=?", (gid, n)).fetchone()[0]
        damage = rules.duel_damage(scores, mult)
        hp = rules.apply_damage(hp, damage)
        for s, d in zip(seats, damage, strict=True):
            c.execute(
                "UPDATE guesses SET damage=? WHERE game_id=? AND n=? AND player_id=?",
                (d, gid, n, s["player_id"]),
            )
    for s, score, h in zip(seats, scores, hp, strict=True):
        c.execute(
            "UPDATE seats SET total_score=total_score+?, hp=? WHERE game_id=? AND seat=?",
            (score, h, gid, s["seat"]),
        )
    c.execute("UPDATE rounds SET closed=? WHERE game_id=? AND n=?", (now, gid, n))
    knocked_out = g["mode"] != "classic" and min(hp) == 0
    if n >= g["n_rounds"] or knocked_out:
        winner = rules.duel_winner(hp) if g["mode"] != "classic" else None
        c.execute(
            "UPDATE games SET status='finished', finished=?, winner_seat=? WHERE id=?", (now, winner, gid)
        )
        if g["mode"] != "classic":
            rate(c, gid, [s["player_id"] for s in seats], winner, now)
    bump(c, gid)


def rate(c: sqlite3.Connection, gid: str, player_ids: list[str], winner: int | None, now: float) -> None:
    """Elo update of both duel players, with a rating_history row each."""
    a, b = (c.execute("SELECT rating FROM players WHERE id=?", (p,)).fetchone()[0] for p in player_ids)
    score_a = 0.5 if winner is None else (1.0 if winner == 0 else 0.0)
    new = rules.elo_update(a, b, score_a)
    for pid, before, after in zip(player_ids, (a, b), new, strict=True):
        c.execute("INSERT INTO rating_history VALUES (?,?,?,?,?)", (gid, pid, before, after, now))
        c.execute("UPDATE players SET rating=?, rated_games=rated_games+1 WHERE id=?", (after, pid))
