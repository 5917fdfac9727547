"""Arena statistics as plain queries over the SQLite file: per player, per country, blind duels, leaderboard.

Every function takes an open ``sqlite3.Connection`` (``row_factory`` may be anything) and returns a list of
dicts, so the server's /api/stats, ``pigeon stats`` and the bot's match log share one implementation. Only
*closed* rounds count: an open round's guesses must not leak into numbers anyone can read mid-game.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from typing import Any

# One row per guess in a closed round, joined with its round, game, seat and player.
_ROUNDS_SQL = """
SELECT g.id AS game_id, g.mode, g.world, g.blind_kind, r.n AS round, r.location_id, r.country, r.town,
       r.lat AS true_lat, r.lon AS true_lon, r.multiplier, r.closed,
       s.seat, p.id AS player_id, p.name AS player, p.kind,
       gu.lat AS guess_lat, gu.lon AS guess_lon, gu.dist_km, gu.score, gu.damage, gu.timed_out,
       gu.created - r.started AS guess_time_s
FROM guesses gu
JOIN rounds r ON r.game_id = gu.game_id AND r.n = gu.n
JOIN games g ON g.id = gu.game_id
JOIN seats s ON s.game_id = gu.game_id AND s.player_id = gu.player_id
JOIN players p ON p.id = gu.player_id
WHERE r.closed IS NOT NULL
ORDER BY r.closed, g.id, r.n, s.seat
"""


def _dicts(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def rounds_table(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every guess of every closed round (the CSV export): truth, guess, distance, score, damage, timing."""
    return _dicts(conn.execute(_ROUNDS_SQL))


def _summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [r["score"] for r in rows]
    dists = [r["dist_km"] for r in rows if r["dist_km"] is not None]
    return {
        "rounds": len(rows),
        "mean_score": round(statistics.fmean(scores), 1) if scores else None,
        "median_km": round(statistics.median(dists), 1) if dists else None,
        "mean_km": round(statistics.fmean(dists), 1) if dists else None,
        "perfect_5k": sum(1 for s in scores if s == 5000),
        "timeouts": sum(1 for r in rows if r["timed_out"]),
    }


def _duel_records(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Wins/losses/draws per player id over finished duel and blind games."""
    rec: dict[str, dict[str, int]] = defaultdict(lambda: {"wins": 0, "losses": 0, "draws": 0})
    cur = conn.execute(
        "SELECT s.player_id, s.seat, g.winner_seat FROM seats s JOIN games g ON g.id = s.game_id "
        "WHERE g.status = 'finished' AND g.mode IN ('duel', 'blind')"
    )
    for pid, seat, winner in cur.fetchall():
        key = "draws" if winner is None else ("wins" if winner == seat else "losses")
        rec[pid][key] += 1
    return rec


def player_stats(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per player: rounds, mean score, median/mean distance, 5k count, time-outs, duel record and rating."""
    by_player: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rounds_table(conn):
        by_player[r["player_id"]].append(r)
    records = _duel_records(conn)
    out = []
    for pid, name, kind, rating, rated in conn.execute(
        "SELECT id, name, kind, rating, rated_games FROM players ORDER BY created"
    ).fetchall():
        rows = by_player.get(pid, [])
        if not rows and not rated:
            continue
        out.append(
            {
                "player_id": pid,
                "player": name,
                "kind": kind,
                **_summarise(rows),
                **records.get(pid, {"wins": 0, "losses": 0, "draws": 0}),
                "rating": round(rating, 1),
            }
        )
    return out


def country_stats(conn: sqlite3.Connection, player_id: str | None = None) -> list[dict[str, Any]]:
    """Per (player kind, country), or per country for one player: rounds, mean score, distances."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rounds_table(conn):
        if player_id is not None and r["player_id"] != player_id:
            continue
        who = r["player"] if player_id is not None else r["kind"]
        groups[(who, r["country"] or "?")].append(r)
    rows = [{"who": who, "country": country, **_summarise(rs)} for (who, country), rs in groups.items()]
    return sorted(rows, key=lambda d: (d["who"], -d["rounds"], d["country"]))


def blind_stats(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Blind duels by the (hidden) opponent kind: the human's record and per-round scores against it.

    The human sits in seat 0 (blind games are created by humans). This is the only place the opponent kind
    is revealed.
    """
    out = []
    for kind in ("bot", "human"):
        games = conn.execute(
            "SELECT id, winner_seat FROM games WHERE mode='blind' AND status='finished' AND blind_kind=?",
            (kind,),
        ).fetchall()
        if not games:
            continue
        ids = {g[0] for g in games}
        rows = [r for r in rounds_table(conn) if r["game_id"] in ids]
        human = [r["score"] for r in rows if r["seat"] == 0]
        opp = [r["score"] for r in rows if r["seat"] == 1]
        out.append(
            {
                "opponent": kind,
                "games": len(games),
                "human_wins": sum(1 for g in games if g[1] == 0),
                "human_losses": sum(1 for g in games if g[1] == 1),
                "draws": sum(1 for g in games if g[1] is None),
                "rounds": len(human),
                "human_mean_score": round(statistics.fmean(human), 1) if human else None,
                "opponent_mean_score": round(statistics.fmean(opp), 1) if opp else None,
            }
        )
    return out


def blind_games(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Each finished blind game with its revealed opponent kind and both players' names and totals."""
    cur = conn.execute(
        "SELECT g.id AS game_id, g.blind_kind AS opponent_kind, g.finished, g.winner_seat, "
        "h.name AS human, o.name AS opponent, sh.total_score AS human_total, "
        "so.total_score AS opponent_total "
        "FROM games g JOIN seats sh ON sh.game_id=g.id AND sh.seat=0 JOIN players h ON h.id=sh.player_id "
        "JOIN seats so ON so.game_id=g.id AND so.seat=1 JOIN players o ON o.id=so.player_id "
        "WHERE g.mode='blind' AND g.status='finished' ORDER BY g.finished"
    )
    return _dicts(cur)


def leaderboard(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Players with at least one rated (duel/blind) game, best Elo first."""
    records = _duel_records(conn)
    cur = conn.execute(
        "SELECT id, name, kind, rating, rated_games FROM players WHERE rated_games > 0 "
        "ORDER BY rating DESC, name LIMIT ?",
        (limit,),
    )
    return [
        {
            "rank": i,
            "player": name,
            "kind": kind,
            "rating": round(rating, 1),
            "games": games,
            **records.get(pid, {"wins": 0, "losses": 0, "draws": 0}),
        }
        for i, (pid, name, kind, rating, games) in enumerate(cur.fetchall(), start=1)
    ]


def all_stats(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """Everything the stats page and ``pigeon stats`` show."""
    return {
        "leaderboard": leaderboard(conn),
        "players": player_stats(conn),
        "countries": country_stats(conn),
        "blind": blind_stats(conn),
        "blind_games": blind_games(conn),
    }
