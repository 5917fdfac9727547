"""The bot's SQLite match log, its stats (``pigeon stats --matchlog``) and the bot config."""
from __future__ import annotations

import json
import sqlite3

import pytest

from bot.config import BotConfig, load_bot_config
from model.paths import project_path
from bot.controller import RoundRecord
from bot.matchlog import MatchLog, event_counts, model_info, open_readonly, recent_matches, summary_stats
from bot.sites.base import GameSummary, GuessResult, Phase, PlacedGuess, RoundResult, RoundState
from model.config import ConfigError


def record(n: int, score: int, dist_km: float, total_ms: float) -> RoundRecord:
    rec = RoundRecord(n, RoundState(Phase.GUESSING, round_n=n, rounds_total=2, time_left_s=30.0, hp_own=6000,
                                    hp_opponent=6000, multiplier=1.0))
    rec.attempts, rec.capture_ms, rec.infer_ms, rec.guess_ms = 1, total_ms / 2, total_ms / 4, total_ms / 4
    rec.guess = GuessResult(48.0, 2.0, topk=[{"lat": 48.0, "lon": 2.0, "p": 0.7}], expected_score=3000.0)
    rec.placed = PlacedGuess(n, 48.0, 2.0, "map", 48.001, 2.001)
    rec.result = RoundResult(n, score, dist_km, 47.0, 3.0, "FR", 48.001, 2.001, hp_own=5000, hp_opponent=6000,
                             damage=1000, multiplier=1.0, opponent_score=4000)
    return rec


def test_match_log_round_trip_and_stats(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"backbone": {"name": "tiny-vit"}, "created_utc": "2026-01-01"}))
    model = model_info(run)
    assert len(model["manifest_sha256"]) == 64 and model["backbone"] == "tiny-vit"
    path = tmp_path / "ml.sqlite"
    with MatchLog(path) as ml:
        mid = ml.start_match("arena", "duel", "g1", model)
        for rec in (record(1, 5000, 0.02, 800.0), record(2, 3000, 760.0, 1200.0)):
            ml.log_guess(mid, rec)
            ml.log_round(mid, rec)
        ml.log_event(mid, 2, "error", "selector 'perform_guess' not found")
        ml.finish_match(mid, GameSummary("g1", 8000, won=True, hp_own=5000, hp_opponent=0), status="finished")
        other = ml.start_match("arena", "classic", "g2", {})
        ml.finish_match(other, None, status="error: BotError: stalled")
    conn = open_readonly(path)
    try:
        (duel,) = [s for s in summary_stats(conn) if s["mode"] == "duel"]
        assert duel["rounds"] == 2 and duel["rounds_5k"] == 1 and duel["won"] == 1 and duel["finished"] == 1
        assert duel["mean_score"] == 4000 and duel["median_km"] == pytest.approx(380.01)
        assert duel["median_round_ms"] == 1000 and duel["model"] == model["manifest_sha256"][:12]
        assert [m["status"] for m in recent_matches(conn)] == ["error: BotError: stalled", "finished"]
        assert event_counts(conn) == [{"kind": "error", "n": 1}]
        row = conn.execute("SELECT truth_country, damage, placed_lat, method FROM rounds WHERE round_n=2").fetchone()
        assert tuple(row) == ("FR", 1000, 48.001, "map")
    finally:
        conn.close()


def test_readonly_errors_and_stats_cli(tmp_path, capsys):
    from pigeon.cli import main

    with pytest.raises(FileNotFoundError, match="match log not found"):
        open_readonly(tmp_path / "nope.sqlite")
    sqlite3.connect(tmp_path / "other.sqlite").execute("CREATE TABLE x (a)").connection.close()
    with pytest.raises(ValueError, match="not a pigeon match log"):
        open_readonly(tmp_path / "other.sqlite")
    with MatchLog(tmp_path / "ml.sqlite") as ml:
        mid = ml.start_match("arena", "classic", "g1", {})
        ml.log_round(mid, record(1, 4000, 100.0, 900.0))
        ml.finish_match(mid, GameSummary("g1", 4000), status="finished")
    assert main(["stats", "--matchlog", str(tmp_path / "ml.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "bot summary" in out and "recent matches" in out
    assert main(["stats", "--matchlog", str(tmp_path / "nope.sqlite")]) == 2


def test_bot_config_defaults_file_and_overrides():
    cfg = load_bot_config()
    assert isinstance(cfg, BotConfig) and cfg.browser.executable == "/usr/bin/chromium"
    assert cfg.browser.viewport_width == 1024 and cfg.play.views == 4 and cfg.demo.split == "test"
    cfg = load_bot_config(None, ["play.human_delay_s=[2, 9]", "browser.headless=false", 'play.mode="duel"'])
    assert cfg.play.human_delay_s == (2.0, 9.0) and not cfg.browser.headless and cfg.play.mode == "duel"
    with pytest.raises(ConfigError, match="human_delay_s"):
        load_bot_config(None, ["play.human_delay_s=[9, 2]"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_bot_config(None, ["play.delay=1"])
    with pytest.raises(ConfigError, match="mode"):
        load_bot_config(None, ['play.mode="battle"'])
    assert project_path("runs/demo").is_absolute() and project_path("/x/y").as_posix() == "/x/y"


def test_bots_opening_one_new_match_log_at_once_do_not_collide(tmp_path):
    """Two duel bots open the same fresh match log in the same instant (pigeon duel): neither may fail."""
    import threading

    for i in range(30):
        path, errors, barrier = tmp_path / f"ml{i}.sqlite", [], threading.Barrier(6)

        def open_it():
            barrier.wait()
            try:
                ml = MatchLog(path)
                ml.conn.execute("INSERT OR REPLACE INTO meta VALUES ('x', '1')")  # a write right after opening
                ml.close()
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        with sqlite3.connect(path) as c:
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_text_cue_reads_are_logged_and_old_logs_gain_the_column(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # a log written before the text cue: guesses without text_json
    conn.executescript("CREATE TABLE guesses (id INTEGER PRIMARY KEY AUTOINCREMENT, match_id INTEGER NOT NULL, "
                       "round_n INTEGER NOT NULL, attempt INTEGER NOT NULL, created_utc TEXT NOT NULL, "
                       "lat REAL NOT NULL, lon REAL NOT NULL, method TEXT, placed_lat REAL, placed_lon REAL, "
                       "expected_score REAL, topk_json TEXT, model_timings_json TEXT);")
    conn.close()
    rec = record(1, 5000, 0.5, 900.0)
    text = {"reads": [[2, "Riga", 0.99]], "best": {"name": "Riga", "country": "LV", "posterior": 0.9},
            "snapped": True, "scripts": [], "words": ["Viesnica"]}
    rec.guess = GuessResult(56.95, 24.11, text=text)
    with MatchLog(path) as ml:
        mid = ml.start_match("arena", "classic", "g1", {})
        ml.log_guess(mid, rec)
    (got,) = sqlite3.connect(path).execute("SELECT text_json FROM guesses").fetchone()
    assert json.loads(got) == text


def test_round_table_shows_what_was_read():
    from pigeon.cli._bot import signs_read

    text = {"reads": [[0, "Lapua 15km", 0.83], [2, "Kauhava", 0.99]],
            "best": {"name": "Kauhava", "country": "FI", "posterior": 0.91}, "snapped": True}
    cell = signs_read(text)
    assert "Lapua 15km" in cell and cell.endswith("-> Kauhava FI 91% snap")
    assert signs_read({"reads": [], "best": None}) == "nothing read" and signs_read(None) == "-"
