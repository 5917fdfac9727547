"""SQLite storage of the arena (WAL mode): players, games, seats, rounds, guesses, predictions, ratings.

One connection per ``Database`` guarded by a lock: SQLite serialises writers anyway, and a single connection
keeps every request's read-modify-write inside one ``BEGIN IMMEDIATE`` transaction, so concurrent guesses can
neither be lost nor double-counted. WAL lets ``pigeon stats`` read the file while a server writes it, and a
committed transaction survives a killed server process (the resume test kills it with SIGKILL).
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS players (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('human', 'bot')),
    token_sha256 TEXT NOT NULL UNIQUE,
    rating REAL NOT NULL,
    rated_games INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS games (
    id TEXT PRIMARY KEY,
    mode TEXT NOT NULL CHECK (mode IN ('classic', 'duel', 'blind')),
    status TEXT NOT NULL CHECK (status IN ('waiting', 'active', 'finished')),
    world TEXT NOT NULL,
    n_rounds INTEGER NOT NULL,
    timer_s REAL,
    options TEXT NOT NULL,          -- JSON: duel options (initial_hp, countdown_s, multipliers)
    blind_kind TEXT,                -- blind mode: the opponent kind drawn at creation ('bot' or 'human')
    current_round INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    creator TEXT NOT NULL REFERENCES players(id),
    created REAL NOT NULL,
    finished REAL,
    winner_seat INTEGER
);
CREATE TABLE IF NOT EXISTS seats (
    game_id TEXT NOT NULL REFERENCES games(id),
    seat INTEGER NOT NULL,
    player_id TEXT NOT NULL REFERENCES players(id),
    hp INTEGER,
    total_score INTEGER NOT NULL DEFAULT 0,
    ready_round INTEGER NOT NULL DEFAULT 0,
    joined REAL NOT NULL,
    PRIMARY KEY (game_id, seat),
    UNIQUE (game_id, player_id)
);
CREATE TABLE IF NOT EXISTS rounds (
    game_id TEXT NOT NULL REFERENCES games(id),
    n INTEGER NOT NULL,
    location_id TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    country TEXT,
    town TEXT,
    multiplier REAL NOT NULL DEFAULT 1,
    started REAL,
    deadline REAL,
    closed REAL,
    PRIMARY KEY (game_id, n)
);
CREATE TABLE IF NOT EXISTS guesses (
    game_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    player_id TEXT NOT NULL REFERENCES players(id),
    lat REAL,
    lon REAL,
    dist_km REAL,
    score INTEGER NOT NULL,
    damage INTEGER NOT NULL DEFAULT 0,
    timed_out INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    PRIMARY KEY (game_id, n, player_id),
    FOREIGN KEY (game_id, n) REFERENCES rounds(game_id, n)
);
CREATE TABLE IF NOT EXISTS predictions (
    game_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    player_id TEXT NOT NULL REFERENCES players(id),
    topk TEXT NOT NULL,
    heat TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (game_id, n, player_id)
);
CREATE TABLE IF NOT EXISTS rating_history (
    game_id TEXT NOT NULL REFERENCES games(id),
    player_id TEXT NOT NULL REFERENCES players(id),
    before REAL NOT NULL,
    after REAL NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (game_id, player_id)
);
CREATE TABLE IF NOT EXISTS held_guesses (   -- blind games: a bot's guess waits here until its drawn release time
    game_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    player_id TEXT NOT NULL REFERENCES players(id),
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    release_at REAL NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (game_id, n, player_id)
);
CREATE TABLE IF NOT EXISTS verdicts (         -- blind games: the human's "person or bot?" answer
    game_id TEXT NOT NULL REFERENCES games(id),
    player_id TEXT NOT NULL REFERENCES players(id),
    verdict TEXT NOT NULL CHECK (verdict IN ('human', 'bot')),
    truth TEXT NOT NULL CHECK (truth IN ('human', 'bot')),
    created REAL NOT NULL,
    PRIMARY KEY (game_id, player_id)
);
CREATE TABLE IF NOT EXISTS seen (             -- locations a player was shown (no repeats until the pool is used)
    player_id TEXT NOT NULL REFERENCES players(id),
    world TEXT NOT NULL,
    location_id TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (player_id, world, location_id)
);
CREATE INDEX IF NOT EXISTS games_status ON games(status);
CREATE INDEX IF NOT EXISTS guesses_player ON guesses(player_id);
"""

TABLES = (
    "meta", "players", "games", "seats", "rounds", "guesses", "predictions", "rating_history", "held_guesses",
    "verdicts", "seen",
)
# columns added in schema 2 (ALTER TABLE ... ADD COLUMN on a version-1 file; nothing is lost)
V2_COLUMNS = (
    ("games", "ended", "TEXT"),        # why a game ended early: cancelled, expired, abandoned (NULL: played out)
    ("games", "rated", "INTEGER NOT NULL DEFAULT 0"),  # 1 once the game changed ratings
    ("games", "revealed", "REAL"),     # blind games: when the opponent kinds became public (stats, ratings)
    ("games", "seed", "TEXT"),         # per-game secret for the image re-encoding
)


class Database:
    """A thread-safe handle on one arena SQLite file (created with the schema if new)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so reads outside tx() see committed data
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        with self.lock:
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash; only a power cut may lose the last ones
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is not None and int(row[0]) == 1:
                self._migrate_v1()
                row = None
            if row is None:
                self._add_columns()
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) != SCHEMA_VERSION:
                raise ValueError(
                    f"{self.path}: arena schema version {row[0]}, this pigeon reads {SCHEMA_VERSION}"
                )

    def _add_columns(self) -> None:
        for table, col, decl in V2_COLUMNS:
            have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            if col not in have:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")

    def _migrate_v1(self) -> None:
        """Version 1 -> 2: new columns; duels already rated keep ``rated=1``; finished blind games are
        revealed (version 1 showed their kinds in the stats already)."""
        self._add_columns()
        self.conn.execute("UPDATE games SET rated=1 WHERE id IN (SELECT game_id FROM rating_history)")
        self.conn.execute("UPDATE games SET revealed=finished WHERE mode='blind' AND status='finished'")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back (and the exception re-raised) if the body raises."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for read-only queries (each statement sees the latest commit)."""
        with self.lock:
            yield self.conn

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for reporting (``pigeon stats``) that never creates or modifies the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"arena database {p} does not exist (start `pigeon arena --db {p}` first)")
    conn = sqlite3.connect(f"file:{p.resolve()}?mode=ro", uri=True, timeout=30.0)
    conn.row_factory = sqlite3.Row
    return conn


def dump_tables(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Every row of every arena table, sorted: tests compare dumps to prove a request changed nothing."""
    return {t: sorted((tuple(r) for r in conn.execute(f"SELECT * FROM {t}")), key=repr) for t in TABLES}
