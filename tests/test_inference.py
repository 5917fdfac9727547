"""Predictor end to end on a tiny trained run: load, warm-up, predict, index refinement, expected-score guess."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from trainkit import TINY_OVERRIDES, make_dataset


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from pigeon.cli import main

    root = tmp_path_factory.mktemp("inf")
    data = make_dataset(root / "ds", n=40, size=40)
    run = root / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *TINY_OVERRIDES, "pretrain.max_steps=2",
                 "eval.build_index=false"]) == 0  # these tests build the index themselves (`pigeon index`)
    return run, data


def test_predict_without_index_is_the_head_guess(run):
    from model.inference import Predictor

    run_dir, data = run
    pred = Predictor.load(run_dir, device="cpu", guess_mode="refined")
    assert pred.index is None
    views = [data / "images" / f"loc0000_{v}.jpg" for v in (0, 90, 180, 270)]
    p = pred.predict(views)
    assert p.refined_guess is None and p.guess == p.head_guess
    # the default guess mode (model.guess.DEFAULT_GUESS_MODE, as the bot's) plays the expected-score guess
    default = Predictor(pred.model, pred.info, device=pred.device).predict(views)
    assert default.guess == default.expected_score_guess == p.expected_score_guess
    assert p.cell_probs.shape == (pred.info.num_cells,)
    assert abs(p.cell_probs.sum() - 1) < 1e-5
    assert [c["p"] for c in p.top_cells] == sorted([c["p"] for c in p.top_cells], reverse=True)
    assert 0 <= p.expected_score <= 5000
    # the expected-score guess is never worse, under the model's own distribution, than the head guess
    from model.geo.geography import geoguessr_score, pairwise_haversine_km

    def expected(pt):
        return float(geoguessr_score(pairwise_haversine_km(np.array([pt]), pred.centroids_deg))[0] @ p.cell_probs)

    # float32 sums in the guess search: within C * eps32 * 5000 points of the float64 re-computation here
    assert expected(p.expected_score_guess) >= expected(p.head_guess) - pred.info.num_cells * 6e-4
    batch = pred.predict_batch([views, views[:1]])
    assert len(batch) == 2 and batch[0].head_guess == p.head_guess
    json.dumps(p.to_dict())


def test_index_build_and_refined_predictions(run):
    from model.formats.dataset import load_dataset
    from model.inference import Predictor
    from pigeon.cli import main

    run_dir, data = run
    assert main(["index", "--run", str(run_dir), "--data", str(data), "--device", "cpu"]) == 0
    manifest = json.loads((run_dir / "index" / "manifest.json").read_text())
    assert manifest["num_locations"] == len(load_dataset(data).split("train")) and manifest["num_cells"] > 1
    pred = Predictor.load(run_dir, device="cpu", guess_mode="refined")
    p = pred.predict([data / "images" / f"loc0001_{v}.jpg" for v in (0, 90, 180, 270)])
    assert p.refined_guess is not None and p.guess == p.refined_guess
    # a refined guess is the exact coordinate of some training location
    train = load_dataset(data).latlon("train")
    assert np.min(np.abs(train - np.array(p.refined_guess)).sum(1)) < 1e-9
    assert set(p.timings_ms) >= {"network_ms", "refine_ms", "total_ms"}
    # `pigeon eval` reports the refined and expected-score guesses beside the head's when the run has an index
    report = run_dir.parent / "report-indexed"
    assert main(["eval", "--run", str(run_dir), "--data", str(data), "--out", str(report), "--split", "train"]) == 0
    modes = json.loads((report / "metrics.json").read_text())["guess_modes"]
    assert set(modes) == {"refined", "expected_score"} and modes["refined"]["n"] == len(train)


def test_bad_images_and_devices_are_clear_errors(run, tmp_path, capsys):
    from model.device import resolve_device
    from model.inference import PredictError, Predictor
    from pigeon.cli import main

    run_dir, _ = run
    pred = Predictor.load(run_dir, device="cpu", warmup=False)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(PredictError, match="cannot read image"):
        pred.predict([bad])
    with pytest.raises(PredictError, match="not found"):
        pred.predict([tmp_path / "missing.jpg"])
    with pytest.raises(PredictError, match="at least one view"):
        pred.predict([])
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    img = tmp_path / "ok.png"
    Image.new("RGB", (50, 40), (10, 200, 30)).save(img)
    assert main(["predict", "--run", str(run_dir), str(img), "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["guess"]) == 2 and len(out["top_cells"]) >= 1
    assert main(["predict", "--run", str(run_dir), str(bad), "--device", "cpu"]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_one_device_rule():
    import torch

    from model.device import resolve_device

    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "CPU", "cuda:x", "cuda:", "gpu"):
        with pytest.raises(ValueError, match="unknown device"):
            resolve_device(bad)
    if torch.cuda.is_available():
        assert resolve_device("cuda:0") == torch.device("cuda", 0)
        with pytest.raises(ValueError, match="numbered from 0"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        for name in ("cuda", "cuda:0"):
            with pytest.raises(ValueError, match="no CUDA GPU"):
                resolve_device(name)
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="Metal"):
            resolve_device("mps")
    from train.distributed import resolve_device as train_resolve  # training resolves through the same rule

    assert train_resolve is resolve_device


def test_one_view_fusion_and_one_guess_mode_default():
    """Views are fused by one function (torch and numpy alike); one default guess mode everywhere."""
    import argparse
    import inspect

    import torch

    from bot.config import PlayConfig
    from model.guess import DEFAULT_GUESS_MODE, GUESS_MODES, softmax
    from model.inference import Predictor
    from model.views import fuse_views
    from pigeon.cli import predict as predict_cli

    emb = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    assert fuse_views(emb).shape == (3, 5)
    np.testing.assert_array_equal(fuse_views(torch.from_numpy(emb)).numpy(), fuse_views(emb))
    np.testing.assert_array_equal(fuse_views(emb[:, :1]), emb[:, 0])
    probs = softmax(np.array([[0.0, 1.0, 2.0], [1e3, 0.0, -1e3]], dtype=np.float32))
    assert probs.dtype == np.float64 and np.allclose(probs.sum(1), 1) and probs[1, 0] == 1.0
    np.testing.assert_allclose(probs[0], torch.softmax(torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), 0))
    assert DEFAULT_GUESS_MODE == "expected_score" and set(GUESS_MODES) == {"expected_score", "refined", "head"}
    assert inspect.signature(Predictor).parameters["guess_mode"].default == DEFAULT_GUESS_MODE
    assert PlayConfig().guess_mode == DEFAULT_GUESS_MODE
    parser = argparse.ArgumentParser()
    predict_cli.register(parser.add_subparsers())
    assert parser.parse_args(["predict", "--run", "R", "x.jpg"]).mode == DEFAULT_GUESS_MODE


def test_batched_expected_score_guesses_match_a_brute_force_search(monkeypatch):
    import model.inference as inference
    from model.geo.geography import geoguessr_score, pairwise_haversine_km
    from model.inference import expected_score_guesses

    rng = np.random.default_rng(3)
    cent = np.c_[rng.uniform(-60, 70, 40), rng.uniform(-180, 180, 40)]
    probs = rng.dirichlet(np.full(40, 0.3), size=25)
    # The routine sums C products p * score in float32 (score <= 5000, sum of p = 1), in an order that the BLAS
    # kernel picks (it differs between CPUs and batch shapes): the rounding error of such a sum is bounded by
    # C * eps32 * 5000 (~0.024 points for C = 40). Anything within that bound is the same answer.
    tol = len(cent) * np.finfo(np.float32).eps * 5000
    pts, vals = expected_score_guesses(probs, cent, batch=7)
    full = probs @ geoguessr_score(pairwise_haversine_km(cent, cent)).T  # (N, C): expected score at each centroid
    np.testing.assert_allclose(vals, full.max(1), rtol=0, atol=tol)
    # the chosen centroid is a best one (within the bound: two near-equal candidates may swap on another CPU)
    chosen = [int(np.flatnonzero((cent == p).all(1))[0]) for p in pts]
    assert (full[np.arange(len(full)), chosen] >= full.max(1) - tol).all()
    # restricted to the 5 most probable cells the value can only drop
    _, v5 = expected_score_guesses(probs, cent, candidates=5)
    assert (v5 <= vals + tol).all()
    # too many cells to keep the C x C matrix: candidate rows are scored per batch (float64), same answer
    monkeypatch.setattr(inference, "SCORE_MATRIX_MAX_CELLS", 10)
    pts_rows, vals_rows = expected_score_guesses(probs, cent, candidates=5)
    assert inference.cell_score_matrix(cent) is None
    np.testing.assert_allclose(vals_rows, v5, rtol=0, atol=tol)


def test_the_evals_expected_score_guess_is_the_point_play_picks_with_the_refined_point():
    """``pigeon eval`` reports the expected-score guess batched; the bot plays model.inference.play per round,
    which also tries the refined point: both must pick the same point (within float rounding)."""
    from model.geo.geography import geoguessr_score, pairwise_haversine_km
    from model.inference import expected_score_guesses, play

    rng = np.random.default_rng(5)
    # 10 clusters of 4 cells on a square around a centre: with the mass spread over a cluster, its centre scores
    # higher than any of its cells (the score is convex in distance, so it takes 3+ cells around a point)
    centres = np.c_[rng.uniform(-50, 60, 10), rng.uniform(-170, 170, 10)]
    square = np.array([[1.5, 1.5], [1.5, -1.5], [-1.5, 1.5], [-1.5, -1.5]])
    cent = (centres[:, None, :] + square[None]).reshape(-1, 2)
    probs = (rng.dirichlet(np.full(10, 0.3), size=40)[:, :, None] * rng.dirichlet(np.full(4, 3.0), size=(40, 10))
             ).reshape(40, -1)
    # refined points: the centre of the most probable cluster on even rows, a random point on odd rows
    top = centres[probs.reshape(40, 10, 4).sum(2).argmax(1)]
    refined = np.where(np.arange(40)[:, None] % 2 == 0, top,
                       np.c_[rng.uniform(-60, 70, 40), rng.uniform(-180, 180, 40)])
    tol = len(cent) * np.finfo(np.float32).eps * 5000
    plain, plain_v = expected_score_guesses(probs, cent, batch=7)
    pts, vals = expected_score_guesses(probs, cent, batch=7, extra=refined[:, None, :])
    assert (vals >= plain_v - tol).all()
    took_refined = (np.abs(pts - refined).max(1) < 1e-9)
    assert 0 < took_refined.sum() < len(pts)      # the extra point wins on some rows, not on all
    exp_refined = (geoguessr_score(pairwise_haversine_km(refined, cent)) * probs).sum(1)
    np.testing.assert_allclose(vals[took_refined], exp_refined[took_refined], rtol=1e-9)
    for i in range(len(probs)):
        p = play(probs[i], cent, ["XX"] * len(cent), "expected_score", refined=tuple(refined[i]))
        assert abs(p.es_value - vals[i]) <= tol
        if took_refined[i] or abs(vals[i] - plain_v[i]) > tol:   # a clear choice: the same point
            np.testing.assert_allclose(p.guess, pts[i], atol=1e-6)


def test_training_writes_the_index_from_its_own_embeddings_and_a_stale_index_is_refused(tmp_path):
    from model.inference import Predictor
    from model.retrieval import RefinementIndex
    from pigeon.cli import main

    data = make_dataset(tmp_path / "ds", n=40, size=40)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *TINY_OVERRIDES, "pretrain.max_steps=2"]) == 0
    built = RefinementIndex.load(run / "index")
    # the same vectors `pigeon index` computes with the Predictor, without a second embedding pass
    assert main(["index", "--run", str(run), "--data", str(data), "--device", "cpu"]) == 0
    again = RefinementIndex.load(run / "index")
    # the index stores int8 embeddings with a per-row scale (max |x| / 127): two float32 passes that differ in the
    # last bits (another BLAS kernel) can round to neighbouring int8 values, one step apart
    step = np.abs(again.train_emb).max(1, keepdims=True) / 127
    assert (np.abs(built.train_emb - again.train_emb) <= 1.01 * step + 1e-6).all()
    assert (built.proto_cell == again.proto_cell).all()
    assert Predictor.load(run, device="cpu").index is not None
    # retraining the head (another seed) re-exports the model; an index kept from before must not be used
    keep = tmp_path / "old-index"
    (run / "index").rename(keep)
    assert main(["train", "--data", str(data), "--out", str(run), *TINY_OVERRIDES, "pretrain.max_steps=2",
                 "head.lr=0.02", "eval.build_index=false"]) == 0
    keep.rename(run / "index")
    with pytest.raises(ValueError, match="another model.safetensors"):
        Predictor.load(run, device="cpu")
