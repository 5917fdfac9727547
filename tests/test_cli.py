"""The `pigeon` entry point: what a user sees on the terminal around the verbs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_PROBE = ("import logging, sys; from pigeon.cli import configure_logging; configure_logging({verbose});"
             "import faiss; logging.getLogger('model.probe').info('own progress line')")


def _stderr(verbose: bool) -> str:
    r = subprocess.run([sys.executable, "-c", LOG_PROBE.format(verbose=verbose)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stderr


def test_third_party_loaders_stay_quiet_unless_verbose():
    quiet = _stderr(False)
    assert "own progress line" in quiet  # our packages still report progress at INFO
    assert "faiss" not in quiet and "Could not load library" not in quiet
    assert "faiss.loader" in _stderr(True)  # -v shows everything


def test_one_module_per_verb_in_help_order():
    from pigeon.cli import COMMAND_MODULES, build_parser

    verbs = [m.rsplit(".", 1)[1] for m in COMMAND_MODULES]
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == verbs
    for verb, parser in sub.choices.items():
        assert parser.get_default("func") is not None or verb in ("geocells", "world")  # those have sub-verbs
        assert parser.prog == f"pigeon {verb}"


def test_render_tables_and_csv(tmp_path, capsys, monkeypatch):
    import csv

    from pigeon.cli._render import format_cell, print_table, write_csv

    monkeypatch.setenv("COLUMNS", "200")
    assert [format_cell(v) for v in (None, 1234.56, 12345, True, "x")] == ["–", "1,234.6", "12,345", "True", "x"]
    rows = [{"player_name": "alice", "mean_score": 4123.456, "games": 3}, {"player_name": "bob", "extra": None}]
    print_table(rows, title="leaderboard")
    out = capsys.readouterr().out
    assert "leaderboard" in out and "player name" in out and "4,123.5" in out and "extra" in out
    print_table([], title="blind", empty="blind: no games yet")
    assert capsys.readouterr().out.strip() == "blind: no games yet"
    print_table([("1", "x")], ["rank", "cell"], total=["total", "1"])
    assert "total" in capsys.readouterr().out
    write_csv(tmp_path / "a.csv", rows)
    with open(tmp_path / "a.csv", newline="") as f:
        got = list(csv.DictReader(f))
    assert got == [{"player_name": "alice", "mean_score": "4123.456", "games": "3", "extra": ""},
                   {"player_name": "bob", "mean_score": "", "games": "", "extra": ""}]
    write_csv(tmp_path / "b.csv", [(1, "x")], ["rank", "cell"])
    assert (tmp_path / "b.csv").read_text().splitlines() == ["rank,cell", "1,x"]
