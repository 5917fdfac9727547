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
    seed: str = "",
) -> None:
    """A new game waiting for players: its row, one row per (pre-drawn) round, the creator in seat 0.
    ``seed`` is the game's secret for the per-game image re-encoding."""
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
        "created, seed) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (*game, seed),
    )
    for n, loc in enumerate(locs, start=1):
        mult = 1.0 if mode == "classic" else rules.round_multiplier(n, opts)
        row = (gid, n, *_loc_fields(loc), mult)
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


def _loc_fields(loc: Location) -> tuple:
    return (loc.id, loc.lat, loc.lon, loc.aux.get("country") or None, loc.aux.get("town") or None)


def redraw_rounds(c: sqlite3.Connection, gid: str, locs: list[Location]) -> None:
    """Replace the locations of game ``gid``'s rounds (none started yet) with ``locs``, in order."""
    for n, loc in enumerate(locs, start=1):
        c.execute(
            "UPDATE rounds SET location_id=?, lat=?, lon=?, country=?, town=? WHERE game_id=? AND n=?",
            (*_loc_fields(loc), gid, n),
        )


def bump(c: sqlite3.Connection, gid: str) -> None:
    """Mark game ``gid`` changed (clients poll ``version``)."""
    c.execute("UPDATE games SET version=version+1 WHERE id=?", (gid,))


def start_round(c: sqlite3.Connection, gid: str, n: int, timer_s: float | None, now: float) -> None:
    """Make round ``n`` current, started at ``now``, timing out after ``timer_s`` (None: no limit)."""
    deadline = None if timer_s is None else now + timer_s
    c.execute("UPDATE rounds SET started=?, deadline=? WHERE game_id=? AND n=?", (now, deadline, gid, n))
    c.execute("UPDATE games SET current_round=?, version=version+1 WHERE id=?", (n, gid))
    # every seated player has now seen this location: later games draw other ones first
    c.execute(
        "INSERT OR IGNORE INTO seen (player_id, world, location_id, created) "
        "SELECT s.player_id, g.world, r.location_id, ? FROM seats s JOIN games g ON g.id=s.game_id "
        "JOIN rounds r ON r.game_id=g.id AND r.n=? WHERE s.game_id=?",
        (now, n, gid),
    )


def close_round(c: sqlite3.Connection, g: sqlite3.Row, n: int, now: float, absent_rounds: int = 2) -> None:
    """Score round ``n`` (missing guesses time out with 0), apply duel damage, maybe finish the game.

    Forfeit rule (duels and blind duels): a seat that has not guessed in ``absent_rounds`` rounds in a row has
    left; the game ends at once as ``abandoned``, unrated, with no winner (nobody earns a rated win against an
    absent opponent). A blind game's ratings wait for its reveal (``reveal``)."""
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
    if g["mode"] != "classic" and n >= absent_rounds and _someone_absent(c, gid, n, absent_rounds):
        finish(c, gid, None, now, ended="abandoned")
        return
    knocked_out = g["mode"] != "classic" and min(hp) == 0
    if n >= g["n_rounds"] or knocked_out:
        winner = rules.duel_winner(hp) if g["mode"] != "classic" else None
        finish(c, gid, winner, now)
        if g["mode"] == "duel":
            rate(c, gid, [s["player_id"] for s in seats], winner, now)
    bump(c, gid)


def _someone_absent(c: sqlite3.Connection, gid: str, n: int, k: int) -> bool:
    """True when a seat timed out (no guess) in each of rounds n-k+1..n."""
    rows = c.execute(
        "SELECT player_id, SUM(timed_out) AS missed FROM guesses WHERE game_id=? AND n>? AND n<=? "
        "GROUP BY player_id",
        (gid, n - k, n),
    ).fetchall()
    return any(r["missed"] >= k for r in rows)


def finish(c: sqlite3.Connection, gid: str, winner: int | None, now: float, ended: str | None = None) -> None:
    """Mark game ``gid`` finished (``ended``: cancelled, expired or abandoned when it did not play out)."""
    c.execute(
        "UPDATE games SET status='finished', finished=?, winner_seat=?, ended=? WHERE id=?",
        (now, winner, ended, gid),
    )
    bump(c, gid)


def reveal(c: sqlite3.Connection, gid: str, now: float) -> None:
    """Make a finished blind game public (stats, leaderboard) and rate it if it was played out."""
    g = c.execute("SELECT * FROM games WHERE id=?", (gid,)).fetchone()
    if g["revealed"] is not None:
        return
    c.execute("UPDATE games SET revealed=? WHERE id=?", (now, gid))
    seats = c.execute("SELECT player_id FROM seats WHERE game_id=? ORDER BY seat", (gid,)).fetchall()
    if g["ended"] is None and len(seats) == 2:
        rate(c, gid, [s["player_id"] for s in seats], g["winner_seat"], now)


def rate(c: sqlite3.Connection, gid: str, player_ids: list[str], winner: int | None, now: float) -> None:
    """Elo update of both duel players, with a rating_history row each; marks the game rated."""
    c.execute("UPDATE games SET rated=1 WHERE id=?", (gid,))
    a, b = (c.execute("SELECT rating FROM players WHERE id=?", (p,)).fetchone()[0] for p in player_ids)
    score_a = 0.5 if winner is None else (1.0 if winner == 0 else 0.0)
    new = rules.elo_update(a, b, score_a)
    for pid, before, after in zip(player_ids, (a, b), new, strict=True):
        c.execute("INSERT INTO rating_history VALUES (?,?,?,?,?)", (gid, pid, before, after, now))
        c.execute("UPDATE players SET rating=?, rated_games=rated_games+1 WHERE id=?", (after, pid))
