"""Arena statistics as plain queries over the SQLite file: per player, per country, blind duels, leaderboard.

Every function takes an open ``sqlite3.Connection`` (``row_factory`` may be anything) and returns a list of
dicts, so the server's /api/stats, ``pigeon stats`` and the bot's match log share one implementation. Only
*closed* rounds count: an open round's guesses must not leak into numbers anyone can read mid-game; and a
blind game counts nowhere until it is *revealed* (over, and its human gave the verdict): before that even
"the bot played a round" would tell.

``evaluation`` is the human-vs-bot comparison: the same rounds played by a person and the bot (duels and
revealed blind duels), with bootstrap 95 % intervals over games, openskill ratings with their uncertainty,
and how often people told the bot apart in blind games.
"""

from __future__ import annotations

import math
import random
import sqlite3
import statistics
from collections import defaultdict
from typing import Any

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0  # fixed: the same database gives the same intervals
# games that count: played out (not cancelled/expired/abandoned) and, if blind, revealed
_PUBLIC = "(g.mode != 'blind' OR g.revealed IS NOT NULL)"

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
WHERE r.closed IS NOT NULL AND (g.mode != 'blind' OR g.revealed IS NOT NULL)
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
        f"WHERE g.status = 'finished' AND g.mode IN ('duel', 'blind') AND g.ended IS NULL AND {_PUBLIC}"
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
            "SELECT id, winner_seat FROM games WHERE mode='blind' AND status='finished' AND blind_kind=? "
            "AND revealed IS NOT NULL AND ended IS NULL",
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
        "so.total_score AS opponent_total, v.verdict, g.ended "
        "FROM games g JOIN seats sh ON sh.game_id=g.id AND sh.seat=0 JOIN players h ON h.id=sh.player_id "
        "JOIN seats so ON so.game_id=g.id AND so.seat=1 JOIN players o ON o.id=so.player_id "
        "LEFT JOIN verdicts v ON v.game_id=g.id AND v.player_id=h.id "
        "WHERE g.mode='blind' AND g.status='finished' AND g.revealed IS NOT NULL ORDER BY g.finished"
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


def all_stats(conn: sqlite3.Connection) -> dict[str, Any]:
    """Everything the stats page and ``pigeon stats`` show."""
    ev = evaluation(conn)
    return {
        "leaderboard": leaderboard(conn),
        "players": player_stats(conn),
        "countries": country_stats(conn),
        "blind": blind_stats(conn),
        "blind_games": blind_games(conn),
        "human_vs_bot": ev["human_vs_bot"],
        "ratings": ev["ratings"],
        "verdicts": ev["verdicts"],
    }


# ---- human vs bot evaluation ------------------------------------------------------------------------------
def paired_rounds(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """One row per closed round of a public, played-out duel between a human and a bot: both scores."""
    rows = conn.execute(
        "SELECT g.id AS game_id, g.mode, g.winner_seat, r.n AS round, p.kind, s.seat, gu.score "
        "FROM guesses gu JOIN rounds r ON r.game_id=gu.game_id AND r.n=gu.n JOIN games g ON g.id=gu.game_id "
        "JOIN seats s ON s.game_id=gu.game_id AND s.player_id=gu.player_id JOIN players p ON p.id=gu.player_id "
        f"WHERE r.closed IS NOT NULL AND g.mode IN ('duel', 'blind') AND g.status='finished' AND g.ended IS NULL "
        f"AND {_PUBLIC} ORDER BY g.finished, r.n"
    ).fetchall()
    by_round: dict[tuple[str, int], dict[str, Any]] = {}
    for game_id, mode, winner, n, kind, seat, score in rows:
        d = by_round.setdefault((game_id, n), {"game_id": game_id, "mode": mode, "round": n})
        d.setdefault("kinds", []).append(kind)
        d[f"{kind}_score"] = score
        d[f"{kind}_seat"] = seat
        d["winner_seat"] = winner
    return [d for d in by_round.values() if sorted(d["kinds"]) == ["bot", "human"]]


def _bootstrap(groups: list[list[float]], stat, samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float]:
    """95 % percentile interval of ``stat`` (a function of a flat list) resampling whole groups (games)."""
    rng = random.Random(BOOTSTRAP_SEED)
    values = []
    for _ in range(samples):
        pick = [x for _ in groups for x in groups[rng.randrange(len(groups))]]
        if pick:
            values.append(stat(pick))
    values.sort()
    if not values:
        return (math.nan, math.nan)
    return values[int(0.025 * (len(values) - 1))], values[int(math.ceil(0.975 * (len(values) - 1)))]


def _estimate(name: str, groups: list[list[float]], stat, unit: str) -> dict[str, Any]:
    flat = [x for g in groups for x in g]
    lo, hi = _bootstrap(groups, stat)
    return {"measure": name, "estimate": round(stat(flat), 3), "ci95_low": round(lo, 3), "ci95_high": round(hi, 3),
            "n": len(flat), "games": len(groups), "unit": unit}


def human_vs_bot(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Human and bot on the same rounds: mean round score of each, the mean difference (bot - human), the
    share of rounds the bot scored higher (ties count half) and the bot's game win rate; each with a 95 %
    bootstrap interval over games (rounds of one game are not independent)."""
    pairs = paired_rounds(conn)
    if not pairs:
        return []
    games: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pairs:
        games[p["game_id"]].append(p)
    glist = list(games.values())
    mean = statistics.fmean

    def col(f) -> list[list[float]]:
        return [[f(p) for p in g] for g in glist]

    wins = [[1.0 if g[0]["winner_seat"] == g[0]["bot_seat"] else 0.0 if g[0]["winner_seat"] is not None else 0.5]
            for g in glist]
    return [
        _estimate("human mean score", col(lambda p: p["human_score"]), mean, "points"),
        _estimate("bot mean score", col(lambda p: p["bot_score"]), mean, "points"),
        _estimate("bot - human score", col(lambda p: p["bot_score"] - p["human_score"]), mean, "points"),
        _estimate("bot round win rate", col(lambda p: 1.0 if p["bot_score"] > p["human_score"] else
                                            0.5 if p["bot_score"] == p["human_score"] else 0.0), mean, "share"),
        _estimate("bot game win rate", wins, mean, "share"),
    ]


def skill_ratings(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """openskill (Plackett-Luce) ratings from every rated game in the order they ended: mu, sigma, the
    95 % interval mu +- 1.96 sigma and the conservative ordinal mu - 3 sigma, best ordinal first."""
    from openskill.models import PlackettLuce

    model = PlackettLuce()
    ratings: dict[str, Any] = {}
    games = conn.execute(
        "SELECT g.id, g.winner_seat FROM games g WHERE g.rated=1 AND g.status='finished' AND g.ended IS NULL "
        f"AND {_PUBLIC} ORDER BY g.finished"
    ).fetchall()
    counts: dict[str, int] = defaultdict(int)
    for gid, winner in games:
        seats = [r[0] for r in conn.execute("SELECT player_id FROM seats WHERE game_id=? ORDER BY seat", (gid,))]
        if len(seats) != 2:
            continue
        teams = [[ratings.setdefault(pid, model.rating(name=pid))] for pid in seats]
        ranks = [1, 1] if winner is None else [0 if winner == i else 1 for i in range(2)]
        new = model.rate(teams, ranks=ranks)
        for pid, (r,) in zip(seats, new, strict=True):
            ratings[pid] = r
            counts[pid] += 1
    out = []
    for pid, r in ratings.items():
        name, kind = conn.execute("SELECT name, kind FROM players WHERE id=?", (pid,)).fetchone()
        out.append({"player": name, "kind": kind, "mu": round(r.mu, 2), "sigma": round(r.sigma, 2),
                    "ci95_low": round(r.mu - 1.96 * r.sigma, 2), "ci95_high": round(r.mu + 1.96 * r.sigma, 2),
                    "ordinal": round(r.ordinal(), 2), "games": counts[pid]})
    return sorted(out, key=lambda d: -d["ordinal"])


def verdict_stats(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """How often people told their blind opponent's kind right: overall and per true kind, with a 95 %
    bootstrap interval over verdicts."""
    rows = conn.execute("SELECT verdict, truth FROM verdicts ORDER BY created").fetchall()
    out = []
    for label, sel in (("all", rows), ("opponent was a bot", [r for r in rows if r[1] == "bot"]),
                       ("opponent was a human", [r for r in rows if r[1] == "human"])):
        if not sel:
            continue
        hits = [[1.0 if v == t else 0.0] for v, t in sel]
        est = _estimate("verdict accuracy", hits, statistics.fmean, "share")
        out.append({"verdicts": label, "accuracy": est["estimate"], "ci95_low": est["ci95_low"],
                    "ci95_high": est["ci95_high"], "n": est["n"],
                    "said_bot": sum(1 for v, _ in sel if v == "bot")})
    return out


def evaluation(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """The human-vs-bot evaluation: paired scores with intervals, ratings with uncertainty, verdicts."""
    return {"human_vs_bot": human_vs_bot(conn), "ratings": skill_ratings(conn), "verdicts": verdict_stats(conn)}


# ---- the match statistics of `pigeon stats` (arena/matchstats.py) from the arena database ----------------------
def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def match_stats(conn: sqlite3.Connection, source: str = "arena database", country_at: Any = None) -> dict[str, Any]:
    """Per-country hit rates and wrong guesses, score histogram, streaks, opponents, matches, duel HP curves and
    rating history (``arena.matchstats.compute``, docs/stats.md) over the public games of the database: the
    same numbers ``pigeon stats`` shows. ``country_at(lats, lons)`` names guessed points' countries (None: hit
    rates unknown)."""
    import json

    from . import matchstats

    guesses = rounds_table(conn)  # closed rounds of public games only
    public = "(g.mode != 'blind' OR g.revealed IS NOT NULL)" if "revealed" in _columns(conn, "games") else "1"
    games = [dict(r) for r in conn.execute(
        "SELECT g.id AS game_id, g.mode, g.status, g.options, g.winner_seat, g.finished, s.seat, "
        "p.name AS player, s.total_score, s.hp FROM games g JOIN seats s ON s.game_id = g.id "
        f"JOIN players p ON p.id = s.player_id WHERE {public} ORDER BY g.created, s.seat")]
    ratings = [dict(r) for r in conn.execute(
        "SELECT p.name AS player, h.created, h.game_id, h.before, h.after FROM rating_history h "
        f"JOIN players p ON p.id = h.player_id JOIN games g ON g.id = h.game_id WHERE {public} "
        "ORDER BY h.created")]
    for g in games:
        try:
            g["initial_hp"] = json.loads(g.pop("options") or "{}").get("initial_hp")
        except (ValueError, AttributeError):
            g["initial_hp"] = None
    rounds, matches, rating_rows = matchstats.arena_rows(guesses, games, ratings)
    return matchstats.compute(rounds, matches, rating_rows, source=source, country_at=country_at)
