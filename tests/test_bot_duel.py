"""Bot vs bot in the real arena: two browsers in two threads, one creates the duel, the other joins it from
the lobby; HP, damage and the winner must agree between the two sides and the match log."""
from __future__ import annotations

import pytest
from botkit import fixed_guesses, start_arena

from arena.demo_world import make_demo_world
from bot.config import BotConfig, PlayConfig
from bot.matchlog import MatchLog
from bot.play import arena_duel

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    root = tmp_path_factory.mktemp("bot-duel")
    srv = start_arena(make_demo_world(root / "world", n_locations=12), root / "arena.sqlite")
    yield srv
    srv.stop()


def test_bot_vs_bot_duel(arena, tmp_path):
    cfg = BotConfig(play=PlayConfig(screenshots_dir=str(tmp_path / "shots")))
    a_pts, b_pts = [(48.0, 2.0)] * 20, [(-33.0, 151.0)] * 20
    a, b = arena_duel(arena.url, (fixed_guesses(a_pts), fixed_guesses(b_pts)), cfg, 3,
                      matchlog_path=tmp_path / "duel.sqlite")
    assert a.game_id == b.game_id and len(a.rounds) == len(b.rounds) >= 1
    last_a, last_b = a.rounds[-1].result, b.rounds[-1].result
    assert last_a.hp_own == last_b.hp_opponent and last_a.hp_opponent == last_b.hp_own
    assert a.summary.won is not b.summary.won or a.summary.draw
    with MatchLog(tmp_path / "duel.sqlite") as ml:
        rows = ml.conn.execute("SELECT mode, status FROM matches").fetchall()
    assert [tuple(r) for r in rows] == [("duel", "finished")] * 2
