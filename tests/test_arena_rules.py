"""Pure arena rules: scoring, duel multipliers and damage, Elo, JPEG metadata stripping, world loading."""

from __future__ import annotations

import io
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from arena_support import make_leaky_world
from arena import rules
import numpy as np

from arena.worlds import load_world, load_worlds, reencode_view


def test_multipliers_follow_the_geoguessr_schedule():
    opts = rules.DuelOptions()
    assert [rules.round_multiplier(n, opts) for n in range(1, 7)] == [1.0, 1.0, 1.5, 2.0, 2.5, 3.0]
    flat = rules.DuelOptions(multiplier_increment=0.0)
    assert rules.round_multiplier(9, flat) == 1.0
    with pytest.raises(ValueError, match="start at 1"):
        rules.round_multiplier(0, opts)


def test_duel_damage_hits_the_lower_score_by_difference_times_multiplier():
    assert rules.duel_damage([4000, 2500], 1.0) == [0, 1500]
    assert rules.duel_damage([1000, 4000], 1.5) == [4500, 0]
    assert rules.duel_damage([3000, 3000], 2.0) == [0, 0]
    assert rules.duel_damage([0, 1], 2.5) == [3, 0]  # halves round up
    assert rules.apply_damage([6000, 800], [0, 1500]) == [6000, 0]
    assert (
        rules.duel_winner([10, 0]) == 0
        and rules.duel_winner([0, 3]) == 1
        and rules.duel_winner([5, 5]) is None
    )
    with pytest.raises(ValueError, match="two sides"):
        rules.duel_damage([1, 2, 3], 1.0)


def test_score_guess_uses_the_geoguessr_formula():
    assert rules.score_guess(48.0, 2.0, 48.0, 2.0) == (0.0, 5000)
    dist, pts = rules.score_guess(0.0, 0.0, 0.0, 10.0)
    assert dist == pytest.approx(1113.19, abs=0.1)
    assert pts == round(5000 * math.exp(-dist / 1492.7))
    with pytest.raises(ValueError):
        rules.score_guess(float("nan"), 0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        rules.score_guess(91.0, 0.0, 0.0, 0.0)


def test_elo_is_zero_sum_and_favours_upsets():
    a, b = rules.elo_update(1500, 1500, 1.0)
    assert (a, b) == (1516.0, 1484.0)
    a2, b2 = rules.elo_update(1300, 1700, 1.0)  # underdog wins: bigger swing
    assert a2 - 1300 > 16 and a2 + b2 == pytest.approx(3000)
    assert rules.elo_update(1500, 1500, 0.5) == (1500.0, 1500.0)
    with pytest.raises(ValueError):
        rules.elo_update(1500, 1500, 0.3)


def test_duel_options_reject_nonsense():
    with pytest.raises(ValueError, match="initial_hp"):
        rules.DuelOptions(initial_hp=0)
    with pytest.raises(ValueError, match="countdown_s"):
        rules.DuelOptions(countdown_s=float("nan"))


def test_reencode_view_drops_metadata_and_trailers_and_differs_per_key(tmp_path):
    make_leaky_world(tmp_path / "w", n=2)
    world = load_world(tmp_path / "w")
    loc = world.pool[0]
    raw = world.dataset.image_path(loc.id, 0).read_bytes()
    assert loc.id.encode() in raw and loc.aux["town"].encode() in raw  # the fixture really leaks
    a, b = reencode_view(raw, b"game-a"), reencode_view(raw, b"game-b")
    for clean in (a, b):
        assert loc.id.encode() not in clean and loc.aux["town"].encode() not in clean and b"Exif" not in clean
        assert clean.endswith(b"\xff\xd9") and clean.count(b"\xff\xd9") == 1
    assert a != b and reencode_view(raw, b"game-a") == a  # per key, and deterministic
    src = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=float)
    for clean in (a, b):  # the same picture: mean absolute change of a couple of levels out of 255
        got = np.asarray(Image.open(io.BytesIO(clean)).convert("RGB"), dtype=float)
        assert got.shape == src.shape and np.abs(got - src).mean() < 3.0
    with pytest.raises(ValueError, match="decodable"):
        reencode_view(b"\x89PNG....", b"k")


def test_worlds_load_by_split_and_refuse_bad_input(tmp_path):
    make_leaky_world(tmp_path / "w", n=3)
    world = load_world(tmp_path / "w")
    assert world.name == "demo" and len(world.pool) == 3 and world.n_views == 4
    assert len(world.draw(3, random.Random(0))) == 3
    with pytest.raises(ValueError, match="at most 3 rounds"):
        world.draw(4, random.Random(0))
    with pytest.raises(ValueError, match="no locations in split 'train'"):
        load_world(tmp_path / "w", split="train")
    with pytest.raises(ValueError, match="unknown split"):
        load_world(tmp_path / "w", split="bogus")
    with pytest.raises(ValueError, match="two worlds are named"):
        load_worlds([tmp_path / "w", tmp_path / "w"])
    with pytest.raises(ValueError, match="does not exist"):
        load_world(tmp_path / "missing")


def test_arena_imports_neither_torch_nor_the_network():
    code = (
        "import sys, arena.app, arena.stats, pigeon.cli.arena, pigeon.cli.stats; "
        "from arena.app import default_vendor_dir; "
        "default_vendor_dir(); bad = [m for m in ('torch', 'model.network', 'model.inference', 'playwright') "
        "if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
