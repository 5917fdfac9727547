"""JSON views of arena state, with the secrecy rules in one place.

A round's truth (coordinates, country, town, location id) and every score or distance that depends on it
appear only once the round is *closed*: in classic after the player's own guess (or time-out), in duels after
both players guessed or the countdown ran out. Location ids and dataset file names never appear at all; images
are addressed by game, round and view index. In blind games the opponent is just "Opponent" (no id, name,
kind or readiness) in every view a player can reach until the game is over and that player gave a verdict (or
the game was revealed); a bot's held guess shows only in the bot's own view.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .worlds import World


def _seat_rows(c: sqlite3.Connection, gid: str) -> list[sqlite3.Row]:
    return c.execute(
        "SELECT s.*, p.name, p.kind FROM seats s JOIN players p ON p.id = s.player_id "
        "WHERE s.game_id=? ORDER BY s.seat",
        (gid,),
    ).fetchall()


def _guess_rows(c: sqlite3.Connection, gid: str, n: int) -> dict[int, sqlite3.Row]:
    rows = c.execute(
        "SELECT g.*, s.seat FROM guesses g JOIN seats s ON s.game_id=g.game_id AND s.player_id=g.player_id "
        "WHERE g.game_id=? AND g.n=?",
        (gid, n),
    ).fetchall()
    return {r["seat"]: r for r in rows}


def player_label(seat_row: sqlite3.Row, viewer_seat: int | None, blind: bool) -> dict[str, Any]:
    """Name/kind of a seat as the viewer may see it (``blind``: hidden, both)."""
    if blind:
        name = (
            "You"
            if seat_row["seat"] == viewer_seat
            else ("Opponent" if viewer_seat is not None else f"Player {seat_row['seat'] + 1}")
        )
        return {"name": name}
    return {"name": seat_row["name"], "kind": seat_row["kind"], "player_id": seat_row["player_id"]}


def round_result(c: sqlite3.Connection, gid: str, r: sqlite3.Row) -> dict[str, Any]:
    """A closed round: truth and every guess with distance, score and damage. Callers check r['closed']."""
    guesses = _guess_rows(c, gid, r["n"])
    return {
        "n": r["n"],
        "multiplier": r["multiplier"],
        "truth": {"lat": r["lat"], "lon": r["lon"], "country": r["country"], "town": r["town"]},
        "guesses": [
            {
                "seat": seat,
                "lat": g["lat"],
                "lon": g["lon"],
                "dist_km": g["dist_km"],
                "score": g["score"],
                "damage": g["damage"],
                "timed_out": bool(g["timed_out"]),
            }
            for seat, g in sorted(guesses.items())
        ],
    }


def _round_view(
    c: sqlite3.Connection,
    g: sqlite3.Row,
    r: sqlite3.Row,
    viewer_seat: int | None,
    world: World | None,
    now: float,
) -> dict[str, Any]:
    gid, n = g["id"], r["n"]
    closed = r["closed"] is not None
    guesses = _guess_rows(c, gid, n)
    views = []
    n_views = world.n_views if world else 1
    loc = world.location(r["location_id"]) if world else None
    for k in range(n_views):
        views.append(
            {
                "index": k,
                "url": f"/api/games/{gid}/rounds/{n}/views/{k}",
                "heading_deg": world.view_heading_deg(loc, k) if world and loc else None,
            }
        )
    own = guesses.get(viewer_seat) if viewer_seat is not None else None
    your_guess = None
    if own is None and viewer_seat is not None and not closed:
        own = c.execute(
            "SELECT h.lat, h.lon, 0 AS timed_out FROM held_guesses h JOIN seats s ON s.game_id=h.game_id AND "
            "s.player_id=h.player_id WHERE h.game_id=? AND h.n=? AND s.seat=?",
            (gid, n, viewer_seat),
        ).fetchone()
    if own is not None:
        your_guess = {"lat": own["lat"], "lon": own["lon"], "timed_out": bool(own["timed_out"])}
        if closed:
            your_guess.update(dist_km=own["dist_km"], score=own["score"])
    deadline = r["deadline"]
    return {
        "n": n,
        "multiplier": r["multiplier"],
        "started": r["started"],
        "deadline": deadline,
        "time_left_s": None if deadline is None else max(0.0, deadline - now),
        "views": views,
        "closed": closed,
        "guessed_seats": sorted(guesses),
        "your_guess": your_guess,
        "result": round_result(c, gid, r) if closed else None,
    }


def _viewer_id(c: sqlite3.Connection, gid: str, viewer_seat: int | None) -> str | None:
    if viewer_seat is None:
        return None
    row = c.execute("SELECT player_id FROM seats WHERE game_id=? AND seat=?", (gid, viewer_seat)).fetchone()
    return None if row is None else row["player_id"]


def _verdict_of(c: sqlite3.Connection, gid: str, player_id: str | None) -> sqlite3.Row | None:
    if player_id is None:
        return None
    return c.execute("SELECT * FROM verdicts WHERE game_id=? AND player_id=?", (gid, player_id)).fetchone()


def needs_verdict(c: sqlite3.Connection, g: sqlite3.Row, player_id: str, kind: str) -> bool:
    """A human seat of a finished, played blind game that has not answered "person or bot?" yet."""
    return (
        g["mode"] == "blind" and g["status"] == "finished" and g["ended"] is None and g["revealed"] is None
        and kind == "human" and _verdict_of(c, g["id"], player_id) is None
    )


def game_view(
    c: sqlite3.Connection, g: sqlite3.Row, viewer_seat: int | None, world: World | None, now: float
) -> dict[str, Any]:
    """The game as one viewer sees it: seats, HP, totals, the current round (truth only once closed)."""
    gid = g["id"]
    viewer_id = _viewer_id(c, gid, viewer_seat)
    verdict = _verdict_of(c, gid, viewer_id)
    blind = g["mode"] == "blind" and g["revealed"] is None and verdict is None
    players, viewer_kind = [], None
    for s in _seat_rows(c, gid):
        if s["seat"] == viewer_seat:
            viewer_kind = s["kind"]
        players.append(
            {
                "seat": s["seat"],
                **player_label(s, viewer_seat, blind),
                "hp": s["hp"],
                "total_score": s["total_score"],
                # a blind opponent's readiness would tell (a bot is ready at once)
                "ready_round": s["ready_round"] if not blind or s["seat"] == viewer_seat else None,
                "is_you": s["seat"] == viewer_seat,
            }
        )
    rnd = None
    if g["current_round"] >= 1:
        r = c.execute("SELECT * FROM rounds WHERE game_id=? AND n=?", (gid, g["current_round"])).fetchone()
        rnd = _round_view(c, g, r, viewer_seat, world, now)
    finished = g["status"] == "finished"
    return {
        "id": gid,
        "mode": g["mode"],
        "status": g["status"],
        "world": g["world"],
        "rounds_total": g["n_rounds"],
        "current_round": g["current_round"],
        "timer_s": g["timer_s"],
        "initial_hp": None if g["mode"] == "classic" else json.loads(g["options"])["initial_hp"],
        "version": g["version"],
        "server_time": now,
        "you": viewer_seat,
        "players": players,
        "round": rnd,
        "winner_seat": g["winner_seat"] if finished else None,
        "draw": finished and g["mode"] != "classic" and g["winner_seat"] is None and g["ended"] is None,
        "ended": g["ended"],
        "needs_verdict": viewer_id is not None and viewer_kind is not None
        and needs_verdict(c, g, viewer_id, viewer_kind),
        "reveal": _reveal(c, g, viewer_seat, verdict) if g["mode"] == "blind" and not blind else None,
    }


def _reveal(
    c: sqlite3.Connection, g: sqlite3.Row, viewer_seat: int | None, verdict: sqlite3.Row | None
) -> dict[str, Any] | None:
    """After a blind game: the opponent's kind, and the viewer's verdict and whether it was right."""
    seats = _seat_rows(c, g["id"])
    opp = next((s for s in seats if s["seat"] != viewer_seat), None) if viewer_seat is not None else None
    return {
        "kinds": {str(s["seat"]): s["kind"] for s in seats},
        "opponent_kind": opp["kind"] if opp is not None else None,
        "your_verdict": verdict["verdict"] if verdict is not None else None,
        "correct": (verdict["verdict"] == verdict["truth"]) if verdict is not None else None,
    }


def closed_rounds(c: sqlite3.Connection, gid: str) -> list[dict[str, Any]]:
    rows = c.execute(
        "SELECT * FROM rounds WHERE game_id=? AND closed IS NOT NULL ORDER BY n", (gid,)
    ).fetchall()
    return [round_result(c, gid, r) for r in rows]


def summary_view(
    c: sqlite3.Connection,
    g: sqlite3.Row,
    viewer_seat: int | None,
    world: World | None,
    now: float,
) -> dict[str, Any]:
    """Game summary: the game view plus every closed round's result (all of them once finished)."""
    return {**game_view(c, g, viewer_seat, world, now), "rounds": closed_rounds(c, g["id"])}


def predictions_view(c: sqlite3.Connection, g: sqlite3.Row) -> list[dict[str, Any]]:
    """The current round's posted top-k/heat predictions for the stream overlay (only the overlay key opens
    it; no player's page asks for it): shown as soon as the bot posts them, during the round. Blind games show
    none until revealed: a heat map says "the opponent is the bot"."""
    if g["current_round"] < 1 or (g["mode"] == "blind" and g["revealed"] is None):
        return []
    n = g["current_round"]
    rows = c.execute(
        "SELECT pr.*, s.seat, p.name FROM predictions pr "
        "JOIN seats s ON s.game_id=pr.game_id AND s.player_id=pr.player_id "
        "JOIN players p ON p.id=pr.player_id WHERE pr.game_id=? AND pr.n=? ORDER BY s.seat",
        (g["id"], n),
    ).fetchall()
    return [
        {
            "seat": r["seat"],
            "name": r["name"],
            "n": r["n"],
            "topk": json.loads(r["topk"]),
            "heat": json.loads(r["heat"]),
        }
        for r in rows
    ]
