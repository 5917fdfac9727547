"""The bot's match log: one SQLite file with every match, round, guess attempt and event the bot went through.

Tables: ``matches`` (site, mode, game id, model run and its manifest hash, outcome), ``rounds`` (the state at the
start, the guess, the truth read after the round, distance, score, HP, per-phase timings), ``guesses`` (every
attempt, with the method and the model's top-k) and ``events`` (errors, recoveries, skips). Truths enter only
through ``log_round``, which the controller calls after the round's result was read. The file is in WAL mode, so
``pigeon stats --matchlog`` can read it while a bot plays.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS matches (
  id INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL, mode TEXT NOT NULL, game_id TEXT,
  started_utc TEXT NOT NULL, finished_utc TEXT, status TEXT NOT NULL DEFAULT 'playing',
  model_run TEXT, model_manifest_sha256 TEXT, model_created_utc TEXT, model_backbone TEXT, model_guess_mode TEXT,
  total_score INTEGER, won INTEGER, draw INTEGER, hp_own INTEGER, hp_opponent INTEGER);
CREATE TABLE IF NOT EXISTS rounds (
  match_id INTEGER NOT NULL REFERENCES matches(id), round_n INTEGER NOT NULL, logged_utc TEXT NOT NULL,
  time_left_s REAL, hp_own_before INTEGER, hp_opponent_before INTEGER, multiplier REAL,
  guess_lat REAL, guess_lon REAL, placed_lat REAL, placed_lon REAL, method TEXT,
  truth_lat REAL, truth_lon REAL, truth_country TEXT, dist_km REAL, score INTEGER, timed_out INTEGER,
  hp_own_after INTEGER, hp_opponent_after INTEGER, damage INTEGER, opponent_score INTEGER,
  attempts INTEGER, delay_ms REAL, capture_ms REAL, infer_ms REAL, guess_ms REAL, result_ms REAL, total_ms REAL,
  expected_score REAL, errors TEXT, PRIMARY KEY (match_id, round_n));
CREATE TABLE IF NOT EXISTS guesses (
  id INTEGER PRIMARY KEY AUTOINCREMENT, match_id INTEGER NOT NULL REFERENCES matches(id), round_n INTEGER NOT NULL,
  attempt INTEGER NOT NULL, created_utc TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL, method TEXT,
  placed_lat REAL, placed_lon REAL, expected_score REAL, topk_json TEXT, model_timings_json TEXT,
  text_json TEXT);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, match_id INTEGER NOT NULL REFERENCES matches(id), round_n INTEGER,
  created_utc TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT);
"""


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def model_info(run_dir: str | Path | None) -> dict[str, Any]:
    """What the log records about a model: run folder, sha256 of its manifest.json, creation time, backbone."""
    if run_dir is None:
        return {}
    path = Path(run_dir) / "manifest.json"
    raw = path.read_bytes()
    manifest = json.loads(raw)
    backbone = manifest.get("backbone")
    return {"run": str(Path(run_dir).resolve()), "manifest_sha256": hashlib.sha256(raw).hexdigest(),
            "created_utc": manifest.get("created_utc"),
            "backbone": backbone.get("name") if isinstance(backbone, dict) else backbone}


def _retry_locked(fn, deadline_s: float = 30.0):
    """Run ``fn`` again while SQLite says the database is locked: switching to WAL and creating the schema take
    locks that the busy handler does not wait for when two bots open a new match log at the same moment."""
    end = time.monotonic() + deadline_s
    delay = 0.01
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > end:
                raise
            time.sleep(delay)  # back-off between SQLite lock attempts (not a page wait)
            delay = min(delay * 2, 0.5)


class MatchLog:
    """Append-only writer (one connection; use one MatchLog per thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout=30000")
        _retry_locked(lambda: self.conn.execute("PRAGMA journal_mode=WAL"))
        _retry_locked(lambda: self.conn.executescript(SCHEMA))
        # logs written before these columns existed gain them; nothing else moves
        for table, col in (("guesses", "text_json"), ("matches", "model_guess_mode")):
            if col not in {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}:
                _retry_locked(lambda: self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {col} TEXT"))
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: match log schema {row[0]}, this bot writes {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> MatchLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_match(self, site: str, mode: str, game_id: str, model: dict[str, Any]) -> int:
        cur = self.conn.execute(
            "INSERT INTO matches (site, mode, game_id, started_utc, model_run, model_manifest_sha256, "
            "model_created_utc, model_backbone, model_guess_mode) VALUES (?,?,?,?,?,?,?,?,?)",
            (site, mode, game_id, _utc(), model.get("run"), model.get("manifest_sha256"), model.get("created_utc"),
             model.get("backbone"), model.get("guess_mode")))
        return int(cur.lastrowid)

    def finish_match(self, match_id: int | None, summary: Any, status: str) -> None:
        if match_id is None:
            return
        s = summary
        self.conn.execute(
            "UPDATE matches SET finished_utc=?, status=?, total_score=?, won=?, draw=?, hp_own=?, hp_opponent=? "
            "WHERE id=?",
            (_utc(), status, getattr(s, "total_score", None), _bool(getattr(s, "won", None)),
             _bool(getattr(s, "draw", None)), getattr(s, "hp_own", None), getattr(s, "hp_opponent", None), match_id))

    def log_guess(self, match_id: int | None, rec: Any) -> None:
        """One guess attempt (``rec`` is a controller RoundRecord with ``guess`` set)."""
        if match_id is None:
            return
        g, p = rec.guess, rec.placed
        self.conn.execute(
            "INSERT INTO guesses (match_id, round_n, attempt, created_utc, lat, lon, method, placed_lat, placed_lon, "
            "expected_score, topk_json, model_timings_json, text_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (match_id, rec.round_n, rec.attempts, _utc(), g.lat_deg, g.lon_deg, p.method if p else None,
             p.placed_lat_deg if p else None, p.placed_lon_deg if p else None, g.expected_score,
             json.dumps(g.topk[:10]), json.dumps(g.timings_ms),
             json.dumps(g.text) if getattr(g, "text", None) is not None else None))

    def log_round(self, match_id: int | None, rec: Any) -> None:
        """A finished round: state at start, guess, truth, result, timings (``rec``: controller RoundRecord)."""
        if match_id is None:
            return
        st, g, p, r = rec.state, rec.guess, rec.placed, rec.result
        self.conn.execute(
            "INSERT OR REPLACE INTO rounds VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (match_id, rec.round_n, _utc(), st.time_left_s, st.hp_own, st.hp_opponent, st.multiplier,
             g.lat_deg if g else None, g.lon_deg if g else None, p.placed_lat_deg if p else None,
             p.placed_lon_deg if p else None, p.method if p else None,
             r.truth_lat_deg, r.truth_lon_deg, r.truth_country, r.dist_km, r.score, int(r.timed_out),
             r.hp_own, r.hp_opponent, r.damage, r.opponent_score, rec.attempts, rec.delay_ms,
             rec.capture_ms if g else None, rec.infer_ms if g else None, rec.guess_ms if p else None,
             rec.result_ms, rec.total_ms if p else None, g.expected_score if g else None,
             "\n".join(rec.errors) or None))

    def log_event(self, match_id: int | None, round_n: int | None, kind: str, detail: str) -> None:
        if match_id is None:
            return
        self.conn.execute("INSERT INTO events (match_id, round_n, created_utc, kind, detail) VALUES (?,?,?,?,?)",
                          (match_id, round_n, _utc(), kind, detail[:2000]))


def _bool(v: Any) -> int | None:
    return None if v is None else int(bool(v))


# ---- reading (pigeon stats --matchlog) ------------------------------------------------------------------------
def open_readonly(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"match log not found: {path} (the bot writes it; see [play] matchlog in configs/bot.toml)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    if conn.execute("SELECT name FROM sqlite_master WHERE name='matches'").fetchone() is None:
        conn.close()
        raise ValueError(f"{path} is not a pigeon match log (no matches table)")
    return conn


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summary_stats(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per (site, mode, model): matches, finished, rounds, mean score, median/mean km, 5k rounds, timings."""
    groups: dict[tuple, dict[str, Any]] = {}
    for m in conn.execute("SELECT * FROM matches ORDER BY id"):
        key = (m["site"], m["mode"], (m["model_manifest_sha256"] or "")[:12] or "-")
        g = groups.setdefault(key, {"matches": 0, "finished": 0, "won": 0, "scores": [], "km": [], "ms": [],
                                    "five_k": 0})
        g["matches"] += 1
        g["finished"] += m["status"] == "finished"
        g["won"] += bool(m["won"])
        for r in conn.execute("SELECT score, dist_km, total_ms FROM rounds WHERE match_id=?", (m["id"],)):
            if r["score"] is not None:
                g["scores"].append(r["score"])
                g["five_k"] += r["score"] >= 5000
            if r["dist_km"] is not None:
                g["km"].append(r["dist_km"])
            if r["total_ms"] is not None:
                g["ms"].append(r["total_ms"])
    out = []
    for (site, mode, model), g in groups.items():
        out.append({"site": site, "mode": mode, "model": model, "matches": g["matches"], "finished": g["finished"],
                    "won": g["won"] if mode == "duel" else None, "rounds": len(g["scores"]),
                    "mean_score": statistics.fmean(g["scores"]) if g["scores"] else None,
                    "median_km": statistics.median(g["km"]) if g["km"] else None,
                    "mean_km": statistics.fmean(g["km"]) if g["km"] else None, "rounds_5k": g["five_k"],
                    "median_round_ms": statistics.median(g["ms"]) if g["ms"] else None,
                    "p90_round_ms": _q(g["ms"], 0.9)})
    return out


def recent_matches(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT m.id, m.site, m.mode, m.game_id, m.started_utc, m.status, m.total_score, m.won, m.hp_own, "
        "m.hp_opponent, COUNT(r.round_n) AS rounds, AVG(r.dist_km) AS mean_km "
        "FROM matches m LEFT JOIN rounds r ON r.match_id = m.id GROUP BY m.id ORDER BY m.id DESC LIMIT ?", (limit,))
    return [dict(r) for r in rows]


def event_counts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT kind, COUNT(*) AS n FROM events GROUP BY kind ORDER BY n DESC")]


def rounds_table(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every logged round joined with its match (the CSV export)."""
    return [dict(r) for r in conn.execute(
        "SELECT m.site, m.mode, m.game_id, m.model_manifest_sha256, r.* FROM rounds r JOIN matches m "
        "ON m.id = r.match_id ORDER BY r.match_id, r.round_n")]
