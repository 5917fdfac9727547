"""The bot with a real (tiny, trained here) model: the Predictor bridge, `pigeon play`, `pigeon demo` and
`pigeon stats --matchlog`. The browser verbs run as subprocesses, as a user runs them."""
from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from trainkit import TINY_OVERRIDES, make_dataset

from arena.demo_world import make_demo_world

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from pigeon.cli import main

    root = tmp_path_factory.mktemp("bot-play")
    data = make_dataset(root / "ds", n=40, size=40)
    assert main(["train", "--data", str(data), "--out", str(root / "run"), *TINY_OVERRIDES, "pretrain.max_steps=2"]) == 0
    return root / "run", make_demo_world(root / "world", n_locations=12)


def pigeon(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pigeon", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, "COLUMNS": "160"})


def test_predictor_guess_fn_takes_png_bytes(run):
    from bot.guessing import load_guess_fn

    run_dir, _ = run
    guess, predictor = load_guess_fn(run_dir, "cpu")
    views = []
    for colour in ((200, 40, 40), (40, 200, 40), (40, 40, 200), (90, 90, 90)):
        buf = io.BytesIO()
        Image.new("RGB", (640, 400), colour).save(buf, "PNG")
        views.append(buf.getvalue())
    g = guess(views)
    assert -90 <= g.lat_deg <= 90 and -180 <= g.lon_deg <= 180
    assert g.topk and [t["p"] for t in g.topk] == sorted((t["p"] for t in g.topk), reverse=True)
    assert 0 < len(g.heat) <= min(4096, predictor.info.num_cells) and sum(h[2] for h in g.heat) <= 1 + 1e-6
    assert g.expected_score is not None and "total_ms" in g.timings_ms


def test_pigeon_play_and_stats_with_a_trained_run(run, tmp_path):
    run_dir, world = run
    ml = tmp_path / "ml.sqlite"
    r = pigeon("play", "--site", "arena", "--run", str(run_dir), "--world", str(world), "--rounds", "1",
               "--matchlog", str(ml), f'play.screenshots_dir="{tmp_path}"')
    assert r.returncode == 0, r.stdout + r.stderr
    assert "total" in r.stdout and "1 rounds" in r.stdout
    with sqlite3.connect(ml) as c:
        sha, status = c.execute("SELECT model_manifest_sha256, status FROM matches").fetchone()
        assert c.execute("SELECT COUNT(*) FROM rounds WHERE truth_lat IS NOT NULL").fetchone()[0] == 1
    assert status == "finished"
    assert sha == hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()
    from pigeon.cli import main

    assert main(["stats", "--matchlog", str(ml), "--export", "csv", "--out", str(tmp_path / "csv")]) == 0
    assert (tmp_path / "csv" / "bot_rounds.csv").read_text().count("\n") == 2


def test_demo_plays_held_out_rounds_and_writes_the_log(run, tmp_path):
    run_dir, world = run
    ml = tmp_path / "demo.sqlite"
    r = pigeon("demo", f'demo.run="{run_dir}"', f'demo.world="{world}"', "demo.rounds=3",
               f'demo.arena_db="{tmp_path / "arena.sqlite"}"', f'play.matchlog="{ml}"',
               f'play.screenshots_dir="{tmp_path}"', "demo.device=\"cpu\"")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pigeon demo" in r.stdout and "3 rounds" in r.stdout and "match log:" in r.stdout
    with sqlite3.connect(ml) as c:
        assert c.execute("SELECT COUNT(*) FROM rounds WHERE score IS NOT NULL").fetchone()[0] == 3


def test_demo_names_what_is_missing(tmp_path, capsys):
    from pigeon.cli import main

    rc = main(["demo", f'demo.run="{tmp_path}/no-run"', f'demo.world="{tmp_path}/no-world"'])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{tmp_path}/no-world" in err and f"{tmp_path}/no-run" in err
    assert "scripts/make_demo_checkpoint.sh" in err and "git checkout -- checkpoints/demo" in err
