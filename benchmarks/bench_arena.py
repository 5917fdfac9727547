"""Arena load benchmark: 50 concurrent simulated players on loopback (30 classic games + 10 duels).

Starts the real server with ``make_server`` (uvicorn thread, SQLite WAL file), runs one thread per player
with a keep-alive HTTP connection (threads spread over ``--procs`` client processes), and checks afterwards
that every guess a client saw accepted is in the database and every game finished. Writes
benchmarks/results/arena.json: medians over ``--repeats`` runs of requests/s and p50/p99 request latency.
Usage: ``python benchmarks/bench_arena.py [--repeats 3] [--procs 2]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena import make_server  # noqa: E402
from arena.demo_world import make_demo_world  # noqa: E402

N_CLASSIC, N_DUELS = 30, 10  # 30 + 2 * 10 = 50 players
DEADLINE_S = 240.0


class Player:
    """One simulated player: keep-alive connection, token, request latencies and accepted guesses."""

    def __init__(self, port: int, name: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.latencies: list[float] = []
        self.accepted: list[tuple[str, int]] = []
        self.token = ""
        self.token = self.call("POST", "/api/players", {"name": name})[1]["token"]

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json", "X-Player-Token": self.token}
        t = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        self.latencies.append(time.perf_counter() - t)
        ctype = resp.getheader("content-type", "")
        return resp.status, (json.loads(raw) if raw and ctype.startswith("application/json") else raw)

    def guess(self, gid: str, n: int, rng: random.Random) -> dict:
        status, st = self.call(
            "POST",
            f"/api/games/{gid}/rounds/{n}/guess",
            {"lat": rng.uniform(-60, 70), "lon": rng.uniform(-180, 180)},
        )
        if status != 200:
            raise RuntimeError(f"guess {gid} round {n}: HTTP {status} {st}")
        self.accepted.append((gid, n))
        return st


def play_classic(p: Player, rng: random.Random) -> str:
    st = p.call("POST", "/api/games", {"mode": "classic"})[1]
    gid = st["id"]
    for n in range(1, 6):
        p.call("GET", f"/api/games/{gid}")
        p.call("GET", f"/api/games/{gid}/rounds/{n}/views/0")
        p.guess(gid, n, rng)
        if n < 5:
            p.call("POST", f"/api/games/{gid}/next")
    p.call("GET", f"/api/games/{gid}/summary")
    return gid


def play_duel_seat(p: Player, gid: str, rng: random.Random) -> None:
    """Poll the duel like a client: guess in an open round, press next on a closed one, until it ends."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        status, st = p.call("GET", f"/api/games/{gid}")
        r = st["round"]
        if st["status"] == "finished":
            return
        if st["status"] == "active" and not r["closed"] and r["your_guess"] is None:
            p.guess(gid, r["n"], rng)
        elif st["status"] == "active" and r["closed"] and st["players"][st["you"]]["ready_round"] < r["n"]:
            p.call("POST", f"/api/games/{gid}/next")
        else:
            time.sleep(0.05)  # waiting for the opponent, as a browser polls
    raise RuntimeError(f"duel {gid} did not finish within {DEADLINE_S} s")


def run_once(seed: int, procs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        world = make_demo_world(Path(tmp) / "world", n_locations=12, seed=seed)
        server = make_server(world, Path(tmp) / "arena.sqlite")
        try:
            return _load(server, seed, procs)
        finally:
            server.stop()


def _worker(port: int, jobs: list[tuple], seed: int, barrier, out) -> None:
    """One client process: set up its players (and duels), wait for the others, play, report."""
    players, errors, threads = [], [], []

    def guarded(job) -> None:
        try:
            job()
        except Exception as e:  # noqa: BLE001 - reported to the parent
            errors.append(repr(e))

    for job in jobs:
        if job[0] == "classic":
            p = Player(port, job[1])
            players.append(p)
            threads.append(lambda p=p, i=job[2]: play_classic(p, random.Random(seed * 1000 + i)))
        else:
            a, b = Player(port, job[1]), Player(port, job[2])
            players += [a, b]
            gid = a.call("POST", "/api/games", {"mode": "duel", "rounds": 10})[1]["id"]
            b.call("POST", f"/api/games/{gid}/join")
            for q, k in ((a, 0), (b, 1)):
                threads.append(
                    lambda q=q, gid=gid, k=k, i=job[3]: play_duel_seat(
                        q, gid, random.Random(seed * 1000 + 500 + 2 * i + k)
                    )
                )
    for p in players:
        p.latencies.clear()  # time the games, not the setup
    ts = [threading.Thread(target=guarded, args=(j,)) for j in threads]
    barrier.wait(timeout=120)
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join(DEADLINE_S)
    out.put(
        {
            "t0": t0,
            "t1": time.time(),
            "errors": errors + ["thread stuck" for t in ts if t.is_alive()],
            "latencies": [x for p in players for x in p.latencies],
            "accepted": len({(g, n, p.token) for p in players for g, n in p.accepted}),
            "players": len(players),
        }
    )


def _load(server, seed: int, procs: int) -> dict:
    """Players run in ``procs`` spawned client processes, so the clients do not share the server's GIL."""
    jobs = [("classic", f"classic{i}", i) for i in range(N_CLASSIC)]
    jobs += [("duel", f"duelA{d}", f"duelB{d}", d) for d in range(N_DUELS)]
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(server.port, jobs[k::procs], seed, barrier, out))
        for k in range(procs)
    ]
    for w in workers:
        w.start()
    reports = [out.get(timeout=DEADLINE_S + 120) for _ in workers]
    for w in workers:
        w.join(30)
    errors = [e for r in reports for e in r["errors"]]
    if errors:
        raise SystemExit(f"bench_arena: {len(errors)} player(s) failed: {errors[:3]}")
    wall = max(r["t1"] for r in reports) - min(r["t0"] for r in reports)
    lat = sorted(x for r in reports for x in r["latencies"])
    accepted = sum(r["accepted"] for r in reports)
    with server.db.read() as c:
        stored = c.execute("SELECT COUNT(*) FROM guesses WHERE timed_out=0").fetchone()[0]
        unfinished = c.execute("SELECT COUNT(*) FROM games WHERE status != 'finished'").fetchone()[0]
        n_games = c.execute("SELECT COUNT(*) FROM games").fetchone()[0]
    return {
        "players": sum(r["players"] for r in reports),
        "games": n_games,
        "requests": len(lat),
        "wall_s": wall,
        "requests_per_s": len(lat) / wall,
        "latency_ms_p50": 1000 * lat[len(lat) // 2],
        "latency_ms_p99": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "accepted_guesses": accepted,
        "stored_guesses": stored,
        "lost_guesses": accepted - stored,
        "unfinished_games": unfinished,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--procs", type=int, default=2, help="client processes the 50 player threads are spread over"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "arena.json")
    args = ap.parse_args(argv)
    runs = [run_once(seed, args.procs) for seed in range(args.repeats)]
    for r in runs:
        if r["lost_guesses"] or r["unfinished_games"]:
            raise SystemExit(f"bench_arena: lost guesses or unfinished games: {r}")
    keys = ("requests_per_s", "latency_ms_p50", "latency_ms_p99", "wall_s", "requests")
    result = {
        "benchmark": "arena",
        "players": runs[0]["players"],
        "games_per_run": runs[0]["games"],
        "repeats": len(runs),
        "client_processes": args.procs,
        **{f"median_{k}": round(statistics.median(r[k] for r in runs), 2) for k in keys},
        "lost_guesses": sum(r["lost_guesses"] for r in runs),
        "runs": runs,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "machine")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
