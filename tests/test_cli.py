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


def _options(parser, path=()):
    """(verb path, option or positional name, help) of every argument of every verb and sub-verb."""
    import argparse

    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield from _options(sp, (*path, name))
        elif not isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
            yield path, (a.option_strings or [a.dest])[0], a.help


# verbs that other people are editing right now; their options get help texts there
HELP_PENDING = {"play", "duel", "arena", "login"}


def test_every_option_has_help_text():
    from pigeon.cli import build_parser

    missing = [f"pigeon {' '.join(p)} {name}" for p, name, h in _options(build_parser())
               if not h and not (p and p[0] in HELP_PENDING)]
    assert not missing, missing


def test_top_level_help_and_version(capsys):
    import pytest

    from pigeon.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and "pigeon/cli" not in out and "register(" not in out  # no developer docstring
    assert "commands:" in out and "--set KEY=VALUE" in out and "--version" in out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    import re

    assert re.fullmatch(r"pigeon \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_overrides_one_spelling_with_the_positional_alias():
    from pigeon.cli import build_parser

    p = build_parser()
    a = p.parse_args(["train", "--config", "c.toml", "--set", "head.lr=1e-3", "data.views=[0]", "--set", "x.y=2"])
    assert a.overrides == ["head.lr=1e-3", "data.views=[0]", "x.y=2"]
    assert p.parse_args(["train", "--config", "c.toml"]).overrides == []
    assert p.parse_args(["index", "--run", "r", "--data", "d", "min_samples=3"]).overrides == ["min_samples=3"]
    render = ["world", "render", "--seed", "1", "--locations", "5", "--out", "o", "--set", "a=1"]
    assert p.parse_args(render).overrides == ["a=1"]
    # every verb that takes overrides takes --set
    sets = {p_[0] for p_, name, _ in _options(p) if name == "--set"}
    positional = {p_[0] for p_, name, _ in _options(p) if name == "overrides"}
    assert positional <= sets, positional - sets


def test_predict_defaults_to_the_bots_guess_mode_and_sums_countries():
    import pytest

    from model.guess import DEFAULT_GUESS_MODE
    from pigeon.cli import build_parser
    from pigeon.cli.predict import country_totals

    assert build_parser().parse_args(["predict", "--run", "r", "a.jpg"]).mode == DEFAULT_GUESS_MODE == "expected_score"
    totals = country_totals([0.2, 0.11, 0.3, 0.39], ["IT", "FR", "IT", ""])
    assert [c for c, _ in totals] == ["IT", "", "FR"]
    assert [p for _, p in totals] == pytest.approx([0.5, 0.39, 0.11])


def test_batch_verbs_keep_freed_memory_and_the_servers_do_not(tmp_path, monkeypatch, capsys):
    """pigeon train/eval/... tell glibc's malloc to keep freed blocks (model.workers.retain_freed_memory); the
    arena, the bot and the rest keep the allocator's defaults. The call itself succeeds on Linux with glibc."""
    import model.workers
    from pigeon.cli import main

    calls = []
    monkeypatch.setattr(model.workers, "retain_freed_memory", lambda: calls.append(1) or True)
    assert main(["eval", "--run", str(tmp_path / "none"), "--data", str(tmp_path / "none"), "--out",
                 str(tmp_path / "r")]) == 2
    assert calls == [1] and "does not exist" in capsys.readouterr().err
    assert main(["stats", "--db", str(tmp_path / "none.sqlite")]) in (0, 1, 2)
    assert calls == [1]
    monkeypatch.undo()
    if sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
        assert model.workers.retain_freed_memory() is True
