"""Blind duels that stay blind, the lifecycle rules (expiry, cancel, forfeit, resume, names), bot tokens and the
human-vs-bot evaluation: a real uvicorn server on a SQLite file, time moved by a fake clock."""

from __future__ import annotations

import json
import random

import pytest

from arena_support import Client, FakeClock
from arena import make_server
from arena.demo_world import make_demo_world


@pytest.fixture()
def arena(tmp_path):
    world = make_demo_world(tmp_path / "world", n_locations=40, size=(160, 100))
    clock = FakeClock()
    srv = make_server(world, tmp_path / "arena.sqlite", rng=random.Random(3), clock=clock, intermission_s=5.0,
                      lobby_ttl_s=300.0)
    srv.clock = clock
    yield srv
    srv.stop()


def seed_human_times(arena, times):
    """Human classic rounds guessed ``times`` seconds after they started (the bot's delays come from these)."""
    h = Client(arena.url).player("timekeeper")
    for t in times:
        gid = h.ok("POST", "/api/games", {"mode": "classic", "rounds": 1})["id"]
        arena.clock.advance(t)
        h.ok("POST", f"/api/games/{gid}/rounds/1/guess", {"lat": 0.0, "lon": 0.0})


def bot_facts(arena, bot_id):
    """Every string that would tell a bot apart: its id, its name, the words for its kind."""
    with arena.db.read() as c:
        name = c.execute("SELECT name FROM players WHERE id=?", (bot_id,)).fetchone()[0]
    return [bot_id, name, '"bot"', "opponent_kind", "blind_kind"]


def test_bots_need_the_operators_token(arena):
    c = Client(arena.url)
    body = json.dumps({"name": "sneaky", "kind": "bot"}).encode()
    assert c.raw("POST", "/api/players", body)[0] == 403
    assert c.raw("POST", "/api/players", body, {"X-Bot-Token": "x" * 32})[0] == 403
    assert c.player("real-bot", "bot", bot_token=arena.service.bot_token).name == "real-bot"


def test_names_are_unique_with_a_visible_discriminator(arena):
    names = [Client(arena.url).player(n).name for n in ("Alice", "alice", "Alice")]
    assert names[0] == "Alice" and len(set(n.lower() for n in names)) == 3
    assert all(n.startswith(("Alice #", "alice #")) and n[-4:].isdigit() for n in names[1:])


def test_blind_game_reveals_nothing_until_the_verdict(arena):
    seed_human_times(arena, [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0])
    h, other = Client(arena.url).player("hana"), Client(arena.url).player("ivan")
    bot = Client(arena.url).player("pigeon-bot", "bot")
    leaderboard_before = h.ok("GET", "/api/leaderboard")
    gid = h.ok("POST", "/api/games", {"mode": "blind", "rounds": 2, "timer_s": 60})["id"]
    # one lobby entry, the same for a bot and a human
    assert bot.ok("GET", "/api/lobby") == other.ok("GET", "/api/lobby")
    bot.ok("POST", f"/api/games/{gid}/join")
    assert other.call("POST", f"/api/games/{gid}/join")[0] == 409
    secrets_ = bot_facts(arena, bot.id)
    seen_by_human = []
    for n in (1, 2):
        st = bot.ok("POST", f"/api/games/{gid}/rounds/{n}/guess", {"lat": 1.0, "lon": 2.0})
        assert st["round"]["your_guess"] is not None  # the bot's own view: locked
        hs = h.ok("GET", f"/api/games/{gid}")
        assert hs["round"]["guessed_seats"] == []  # held back: the human sees no early guess
        seen_by_human.append(hs)
        arena.clock.advance(2.0)
        h.ok("POST", f"/api/games/{gid}/rounds/{n}/guess", {"lat": 3.0, "lon": 4.0})
        seen_by_human.append(h.ok("GET", f"/api/games/{gid}"))
        arena.clock.advance(15.0)  # past any drawn delay (at most 13 s)
        seen_by_human += [h.ok("GET", f"/api/games/{gid}"), h.ok("GET", f"/api/games/{gid}/summary")]
        seen_by_human.append(h.ok("GET", "/api/stats"))
        seen_by_human.append(h.ok("GET", "/api/stats/match"))
        seen_by_human.append(h.ok("GET", "/api/leaderboard"))
        arena.clock.advance(5.5)  # fixed intermission
    final = h.ok("GET", f"/api/games/{gid}")
    assert final["status"] == "finished" and final["needs_verdict"] and final["reveal"] is None
    blob = json.dumps(seen_by_human + [final])
    leaks = [s for s in secrets_ if s in blob]
    assert not leaks, leaks
    games_only = json.dumps([v for v in seen_by_human + [final] if isinstance(v, dict) and "status" in v])
    assert '"kind": "' not in games_only and '"player_id": "' not in games_only  # null for every seat
    assert h.ok("GET", "/api/leaderboard") == leaderboard_before  # nothing rated yet
    assert not any(g["game_id"] == gid for g in h.ok("GET", "/api/stats")["blind_games"])
    # the bot's guesses landed at human-like times: each one of the recorded human times
    with arena.db.read() as c:
        delays = [r[0] for r in c.execute(
            "SELECT gu.created - r.started FROM guesses gu JOIN rounds r ON r.game_id=gu.game_id AND r.n=gu.n "
            "WHERE gu.game_id=? AND gu.player_id=?", (gid, bot.id))]
    assert len(delays) == 2 and all(any(abs(d - t) < 1e-6 for t in range(4, 14)) for d in delays), delays
    assert h.call("POST", f"/api/games/{gid}/verdict", {"verdict": "maybe"})[0] == 422
    assert bot.call("POST", f"/api/games/{gid}/verdict", {"verdict": "human"})[0] == 403
    after = h.ok("POST", f"/api/games/{gid}/verdict", {"verdict": "bot"})
    assert after["reveal"]["opponent_kind"] == "bot" and after["reveal"]["correct"] is True
    assert "pigeon-bot" in json.dumps(after["players"])
    assert h.call("POST", f"/api/games/{gid}/verdict", {"verdict": "human"})[0] == 409  # final
    stats = h.ok("GET", "/api/stats")
    assert any(g["game_id"] == gid and g["verdict"] == "bot" for g in stats["blind_games"])
    assert stats["verdicts"][0]["accuracy"] == pytest.approx(1.0) and stats["verdicts"][0]["n"] == 1
    hvb = {r["measure"]: r for r in stats["human_vs_bot"]}
    assert hvb["human mean score"]["n"] == 2 and hvb["human mean score"]["ci95_low"] <= hvb["human mean score"][
        "estimate"] <= hvb["human mean score"]["ci95_high"]
    assert {r["player"] for r in stats["ratings"]} == {"hana", "pigeon-bot"}
    assert all(r["sigma"] > 0 and r["ci95_low"] < r["mu"] < r["ci95_high"] for r in stats["ratings"])


def test_stale_duel_expires_and_gives_no_rating(arena):
    a, bot = Client(arena.url).player("gone"), Client(arena.url).player("late-bot", "bot")
    gid = a.ok("POST", "/api/games", {"mode": "duel", "rounds": 4})["id"]
    assert gid in [g["id"] for g in bot.ok("GET", "/api/lobby")]
    arena.clock.advance(301.0)
    assert gid not in [g["id"] for g in bot.ok("GET", "/api/lobby")]
    status, data = bot.call("POST", f"/api/games/{gid}/join")
    assert status == 409 and "expired" in data["detail"]
    st = a.ok("GET", f"/api/games/{gid}")
    assert st["status"] == "finished" and st["ended"] == "expired" and st["winner_seat"] is None
    assert not any(r["player"] in ("gone", "late-bot") for r in a.ok("GET", "/api/leaderboard"))


def test_absent_opponent_ends_the_duel_unrated(arena):
    a, bot = Client(arena.url).player("leaver"), Client(arena.url).player("bot-x", "bot")
    gid = a.ok("POST", "/api/games", {"mode": "duel", "rounds": 6})["id"]
    bot.ok("POST", f"/api/games/{gid}/join")
    for n in (1, 2):  # the creator is gone: the bot guesses alone, the countdown runs out
        bot.ok("POST", f"/api/games/{gid}/rounds/{n}/guess", {"lat": 1.0, "lon": 1.0})
        arena.clock.advance(17.0)
        bot.ok("GET", f"/api/games/{gid}")
        arena.clock.advance(11.0)
        bot.ok("GET", f"/api/games/{gid}")
    st = bot.ok("GET", f"/api/games/{gid}")
    assert st["status"] == "finished" and st["ended"] == "abandoned" and st["winner_seat"] is None
    with arena.db.read() as c:
        assert c.execute("SELECT rated FROM games WHERE id=?", (gid,)).fetchone()[0] == 0
        assert c.execute("SELECT COUNT(*) FROM rating_history WHERE game_id=?", (gid,)).fetchone()[0] == 0


def test_cancel_and_resume(arena):
    a, b = Client(arena.url).player("ann"), Client(arena.url).player("ben")
    waiting = a.ok("POST", "/api/games", {"mode": "duel"})["id"]
    assert [g["id"] for g in a.ok("GET", "/api/me/games")] == [waiting]
    assert b.call("POST", f"/api/games/{waiting}/cancel")[0] == 403
    assert a.ok("POST", f"/api/games/{waiting}/cancel")["ended"] == "cancelled"
    assert waiting not in [g["id"] for g in b.ok("GET", "/api/lobby")]
    assert a.call("POST", f"/api/games/{waiting}/cancel")[0] == 409
    classic = a.ok("POST", "/api/games", {"mode": "classic", "rounds": 2})["id"]
    assert [g["id"] for g in a.ok("GET", "/api/me/games")] == [classic]
