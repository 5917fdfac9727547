"""The shipped demo checkpoint (checkpoints/demo): intact, loadable, and really located on its held-out rounds."""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "checkpoints" / "demo"
HOLDOUT = CKPT / "holdout"


def test_checkpoint_is_small_complete_and_hash_checked():
    from model.formats.rundir import read_manifest, verify_files

    assert (CKPT / "manifest.json").is_file(), "checkpoints/demo is missing: scripts/make_demo_checkpoint.sh"
    total = sum(p.stat().st_size for p in CKPT.rglob("*") if p.is_file())
    assert total < 40 * 1000 * 1000, f"demo checkpoint is {total / 1e6:.1f} MB (limit 40)"
    assert not (CKPT / "state").exists(), "training state must not ship"
    manifest = read_manifest(CKPT)
    verify_files(CKPT, manifest)  # every listed file present with its recorded size and sha256
    assert (CKPT / "index" / "manifest.json").is_file()


def test_holdout_is_disjoint_from_training():
    from model.formats.dataset import load_dataset

    hold = load_dataset(HOLDOUT)
    assert len(hold.locations) >= 20 and {loc.split for loc in hold.locations} == {"test"}
    from model.geo.geography import pairwise_haversine_km
    from model.retrieval import RefinementIndex

    index = RefinementIndex.load(CKPT / "index")
    d = pairwise_haversine_km(np.array([[loc.lat, loc.lon] for loc in hold.locations]), index.train_latlon)  # the index holds the training split only
    assert d.min() >= 10.0, f"a held-out location is {d.min():.1f} km from a training location (split.min_km = 10)"


@pytest.fixture(scope="module")
def predictions():
    from model.formats.dataset import load_dataset
    from model.geo.geography import haversine_km
    from model.inference import Predictor

    hold = load_dataset(HOLDOUT)
    pred = Predictor.load(CKPT, device="cpu", guess_mode="refined")
    out = pred.predict_batch([hold.image_paths(loc.id) for loc in hold.locations])
    truth = np.array([[loc.lat, loc.lon] for loc in hold.locations])
    guess = np.array([p.guess for p in out])
    return hold, out, haversine_km(guess[:, 0], guess[:, 1], truth[:, 0], truth[:, 1])


def test_demo_model_locates_held_out_rounds_better_than_chance(predictions):
    from model.geo.geography import haversine_km

    hold, out, err = predictions
    assert all(p.refined_guess is not None for p in out)
    # chance: a guess drawn from another held-out round (same land distribution, no image information)
    truth = np.array([[loc.lat, loc.lon] for loc in hold.locations])
    shuffled = np.roll(truth, 7, axis=0)
    chance = haversine_km(shuffled[:, 0], shuffled[:, 1], truth[:, 0], truth[:, 1])
    assert statistics.median(err) < 0.6 * statistics.median(chance), (statistics.median(err),
                                                                       statistics.median(chance))
