"""A real `python -m pigeon arena` process killed with SIGKILL mid-game resumes every game from SQLite."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from arena_support import Client, make_leaky_world

REPO = Path(__file__).resolve().parents[1]


def start_arena(world: Path, db: Path) -> tuple[subprocess.Popen, str]:
    """Start the CLI on a free port; returns the process and the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pigeon", "arena", "--world", str(world), "--db", str(db), "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)  # a server that never prints its URL must not hang the test
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"pigeon arena on (http://\S+)", line)
            if m:
                return proc, m.group(1)
    finally:
        watchdog.cancel()
    proc.kill()
    raise AssertionError("arena did not start:\n" + "".join(lines))


def stop(proc: subprocess.Popen, sig: int) -> None:
    os.kill(proc.pid, sig)
    proc.wait(timeout=20)
    proc.stdout.close()


@pytest.mark.slow
def test_killed_server_resumes_games_from_sqlite(tmp_path):
    world, db = make_leaky_world(tmp_path / "world", n=10), tmp_path / "arena.sqlite"
    proc, url = start_arena(world, db)
    try:
        solo = Client(url).player("solo")
        gid = solo.ok("POST", "/api/games", {"mode": "classic"})["id"]
        solo.ok("POST", f"/api/games/{gid}/rounds/1/guess", {"lat": 10.0, "lon": 10.0})
        solo.ok("POST", f"/api/games/{gid}/next")
        before = solo.ok("POST", f"/api/games/{gid}/rounds/2/guess", {"lat": 20.0, "lon": 20.0})
        b, c = Client(url).player("b"), Client(url).player("c")
        duel = b.ok("POST", "/api/games", {"mode": "duel", "duel": {"countdown_s": 300}})["id"]
        c.ok("POST", f"/api/games/{duel}/join")
        b.ok("POST", f"/api/games/{duel}/rounds/1/guess", {"lat": 0.0, "lon": 0.0})
    finally:
        stop(proc, signal.SIGKILL)  # no shutdown, no checkpoint: whatever was committed must survive
    assert proc.returncode == -signal.SIGKILL

    proc, url2 = start_arena(world, db)
    try:
        solo.base_url = b.base_url = c.base_url = url2
        st = solo.ok("GET", f"/api/games/{gid}")
        assert st["current_round"] == 2 and st["round"]["closed"]
        assert st["players"][0]["total_score"] == before["players"][0]["total_score"]
        assert st["round"]["result"] == before["round"]["result"]
        for n in range(3, 6):  # the same token still works and the game plays on
            solo.ok("POST", f"/api/games/{gid}/next")
            solo.ok("POST", f"/api/games/{gid}/rounds/{n}/guess", {"lat": 30.0, "lon": 30.0})
        summary = solo.ok("GET", f"/api/games/{gid}/summary")
        assert summary["status"] == "finished" and [r["n"] for r in summary["rounds"]] == [1, 2, 3, 4, 5]

        st = c.ok("GET", f"/api/games/{duel}")
        assert st["round"]["guessed_seats"] == [0] and not st["round"]["closed"]
        st = c.ok("POST", f"/api/games/{duel}/rounds/1/guess", {"lat": 45.0, "lon": 90.0})
        scores = [g["score"] for g in st["round"]["result"]["guesses"]]
        assert sorted(p["hp"] for p in st["players"]) == [6000 - abs(scores[0] - scores[1]), 6000]
    finally:
        stop(proc, signal.SIGTERM)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
