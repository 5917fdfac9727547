"""train/: caption sampler, smoothing loss, checkpoints and resume, embedding cache, `pigeon train` / `pigeon
eval`."""
from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest
import torch
from trainkit import TINY_OVERRIDES, make_dataset

from model.config import load_config
from model.geo.geography import haversine_smoothed_targets
from train import captions
from train.captions import CaptionInfo, compass_word, country_name, sample_caption
from train.config import HeadConfig, TrainConfig
from train.head import aux_loss, cell_loss, smoothed_targets
from train.pretrain import lr_at

FULL = CaptionInfo(country="France", admin1="Brittany", town="Brest", climate="a temperate oceanic climate",
                   driving_side="right", heading_deg=100.0, month=3)


def test_caption_component_frequencies_match_pigeon():
    rng = np.random.default_rng(42)
    caps = [sample_caption(rng, FULL, view_offset_deg=0.0) for _ in range(20000)]
    freq = lambda pat: np.mean([bool(re.search(pat, c)) for c in caps])
    expected = {"has a temperate oceanic": 0.4, "^A Street View photo": 0.6 + 0.4 * 0.7,
                "drive on the right": 0.6 * 0.3, "facing east": 0.3, "taken in March": 0.3}
    for pat, p in expected.items():
        assert abs(freq(pat) - p) < 0.015, (pat, freq(pat), p)
    located = [
        c for c in caps if c.startswith("A Street View photo")
    ]  # clauses live in the location sentence
    for pat, p in {"in the region of Brittany": 0.6, "close to the town of Brest": 0.4}.items():
        assert abs(np.mean([pat in c for c in located]) - p) < 0.015, pat
    # driving side never together with climate; the location sentence, when present, comes first
    assert not any("drive on" in c and "climate" in c for c in caps)
    assert all(c.startswith("A Street View photo") for c in caps if "A Street View photo" in c)
    assert all("A Street View photo" in c for c in caps if "climate" not in c)


def test_caption_without_aux_is_the_location_sentence_and_unknowns_are_left_out():
    rng = np.random.default_rng(0)
    caps = {sample_caption(rng, FULL, aux=False) for _ in range(200)}
    assert all(re.fullmatch(r"A Street View photo (close to the town of Brest )?(in the region of Brittany )?"
                            r"in France\.", c) for c in caps)
    bare = CaptionInfo(country="Japan")
    assert {sample_caption(rng, bare) for _ in range(100)} == {"A Street View photo in Japan."}


def test_compass_bins_and_country_names():
    assert [compass_word(d) for d in (0, 45, 45.5, 135, 136, 225, 226, 315, 316, 359, -10)] == \
        ["north", "north", "east", "east", "south", "south", "west", "west", "north", "north", "north"]
    assert FULL.heading_deg + 270 == 370  # view 270 of a location heading 100 faces 10 deg: north
    assert "facing north" in "".join(sample_caption(np.random.default_rng(i), FULL, 270) for i in range(50))
    assert country_name("NL") == "the Netherlands" and country_name("US") == "the United States"
    assert country_name("FR") == "France" and country_name("United States of America") == "the United States"
    assert country_name("Cayman Islands") == "the Cayman Islands"


def test_caption_info_from_dataset_row():
    info = CaptionInfo.from_aux({"country": "JP", "admin1": "Tokyo", "town": "", "koppen": "Cfa",
                                 "driving_side": "left", "heading": "12.5", "month": "13"})
    assert (info.country, info.admin1, info.town, info.driving_side, info.heading_deg, info.month) == \
        ("Japan", "Tokyo", "", "left", 12.5, None)
    assert info.climate == captions.koppen_descriptions()["Cfa"] == "a humid subtropical climate"


def test_smoothed_targets_are_pigeons_unnormalised_labels():
    rng = np.random.default_rng(1)
    cent = np.c_[rng.uniform(-60, 60, 30), rng.uniform(-180, 180, 30)]
    pts = np.c_[rng.uniform(-60, 60, 8), rng.uniform(-180, 180, 8)]
    t = smoothed_targets(torch.tensor(pts), torch.tensor(cent), 75.0).numpy()
    np.testing.assert_allclose(t, haversine_smoothed_targets(pts, cent, 75.0, normalize=False), atol=1e-6)
    assert np.allclose(t.max(axis=1), 1.0) and (t.sum(axis=1) >= 1).all()
    # a point 75 km from its nearest centroid gets exp(-1) for a centroid 150 km away
    pair = smoothed_targets(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.6736], [0.0, -1.3472]]), 75.0)
    assert pair[0, 0] == pytest.approx(1.0) and pair[0, 1] == pytest.approx(np.exp(-1), rel=1e-3)


def test_cell_loss_is_minus_sum_t_log_p_or_plain_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(4, 5)
    cent = torch.tensor(
        [[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [-20.0, 30.0], [45.0, -100.0]], dtype=torch.float64
    )
    latlon = cent[[0, 1, 2, 4]] + 0.1
    cells = torch.tensor([0, 1, 2, 4])
    t = smoothed_targets(latlon, cent, 75.0)
    expected = -(t * torch.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(cell_loss(logits, latlon, cells, cent, 75.0, True), expected)
    torch.testing.assert_close(cell_loss(logits, latlon, cells, cent, 75.0, False),
                               torch.nn.functional.cross_entropy(logits, cells))


def test_aux_loss_ignores_unknown_targets():
    out = {"cell": torch.zeros(2, 3), "regression": torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
           "koppen": torch.zeros(2, 4), "month": torch.zeros(2, 12)}
    none = aux_loss(
        out, torch.full((2, 2), float("nan")), torch.tensor([-1, -1]), torch.tensor([-1, -1]), (8, 2, 1)
    )
    assert none.item() == 0.0
    some = aux_loss(
        out,
        torch.tensor([[0.0, float("nan")], [float("nan"), float("nan")]]),
        torch.tensor([-1, 2]),
        torch.tensor([-1, -1]),
        (8, 2, 1),
    )
    assert some.item() == pytest.approx(8 * 1.0 + 2 * np.log(4), rel=1e-5)


def test_linear_warmup_then_decay():
    lrs = [lr_at(s, 10, 1.0, 0.2) for s in range(10)]
    assert lrs[:2] == [0.5, 1.0] and lrs[2] == 1.0 and lrs[-1] == pytest.approx(1 / 8)
    assert all(a >= b for a, b in itertools.pairwise(lrs[1:]))


# --- stages on a tiny dataset --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "ds", n=40, size=40)


def _stage(tiny, out, *overrides):
    from train.pipeline import _setup

    cfg = load_config(TrainConfig, None, [*TINY_OVERRIDES, *overrides])
    return _setup(cfg, tiny, out, torch.device("cpu"), False, None)


class Stop(Exception):
    pass


def _stop_at(stage: str, n: int):
    def progress(s, done, total, **info):
        if s == stage and done == n:
            raise Stop
    return progress


def test_pretraining_resumes_to_identical_weights(tiny, tmp_path):
    from train.pipeline import backbone_clip

    over = ("pretrain.max_steps=3", "pretrain.save_every_steps=1")
    straight = backbone_clip(_stage(tiny, tmp_path / "a", *over), True)
    st = _stage(tiny, tmp_path / "b", *over)
    st.progress = _stop_at("pretrain", 2)
    with pytest.raises(Stop):
        backbone_clip(st, True)
    st.progress = None
    resumed = backbone_clip(st, True)
    # Exact on purpose: both runs are seeded the same and execute the same kernels in the same order, in this
    # process with its thread count; a resume that is only close (a skipped batch, a lost optimizer moment) is a bug
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    fresh = backbone_clip(_stage(tiny, tmp_path / "c", "pretrain.max_steps=1"), True)
    assert not torch.equal(fresh.visual.conv1.weight, straight.visual.conv1.weight)


def test_head_training_resumes_and_keeps_other_configs_apart(tiny, tmp_path):
    from train.pipeline import backbone_clip, embeddings, ensure_geocells, fit_head
    from train.state import StateMismatchError, load_checkpoint

    st = _stage(tiny, tmp_path / "run", "pretrain.enabled=false", "head.epochs=4")
    emb = embeddings(st, backbone_clip(st, False).visual)
    cells = ensure_geocells(st, st.cfg.geocells, st.out / "cells")
    straight, _, _ = fit_head(st, emb, cells, st.cfg.head, None)
    st.progress = _stop_at("head", 2)
    with pytest.raises(Stop):
        fit_head(st, emb, cells, st.cfg.head, st.state)
    st.progress = None
    resumed, _, _ = fit_head(st, emb, cells, st.cfg.head, st.state)
    assert resumed.epochs_run == straight.epochs_run == 4 and resumed.history == straight.history
    for (k, a), b in zip(straight.head.state_dict().items(), resumed.head.state_dict().values()):
        assert torch.equal(a, b), k
    other = HeadConfig(**{**st.cfg.head.__dict__, "lr": 0.5})
    fit_head(st, emb, cells, other, st.state)  # a second head config: its own checkpoint folder
    folders = sorted(st.state.glob("head-*"))
    assert len(folders) == 2
    identity = json.loads((folders[0] / "manifest.json").read_text())["identity"]
    with pytest.raises(StateMismatchError, match="differs in: dataset"):
        load_checkpoint(folders[0], {**identity, "dataset": "0" * 64})


def test_embedding_cache_is_keyed_by_content_not_by_file_existence(tiny, tmp_path, monkeypatch):
    import shutil

    from train import embed
    from train.pipeline import backbone_clip, embeddings

    monkeypatch.setenv("PIGEON_CACHE", str(tmp_path / "cache"))  # an empty cache of its own
    ds_copy = tmp_path / "ds"
    shutil.copytree(tiny, ds_copy)
    st = _stage(ds_copy, tmp_path / "run", "pretrain.enabled=false")
    visual = backbone_clip(st, False).visual
    first = embeddings(st, visual)
    assert first.shape == (40, 4, 160)
    calls = []
    real = embed.embed_locations
    monkeypatch.setattr(embed, "embed_locations", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.testing.assert_close(embeddings(st, visual), first)
    assert calls == []  # cache hit
    from model.paths import cache_dir

    assert st.cache_dir == cache_dir() == tmp_path / "cache" and not (st.out / "cache").exists()  # not in RUN
    cache_file, = st.cache_dir.glob("emb-*.safetensors")
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # same name, corrupt content
    torch.testing.assert_close(embeddings(st, visual), first)
    assert len(calls) == 1
    from PIL import Image
    Image.new("RGB", (40, 40), (0, 0, 0)).save(ds_copy / "images" / "loc0000_0.jpg")  # data changed
    st2 = _stage(ds_copy, tmp_path / "run", "pretrain.enabled=false")
    changed = embeddings(st2, visual)
    assert len(calls) == 2 and not torch.equal(changed[0, 0], first[0, 0])
    torch.testing.assert_close(changed[1:], first[1:])


def test_pigeon_train_and_eval_end_to_end(tiny, tmp_path):
    from model.network import load_run
    from pigeon.cli import main

    run, report = tmp_path / "run", tmp_path / "report"
    assert (
        main(["train", "--data", str(tiny), "--out", str(run), *TINY_OVERRIDES, "pretrain.max_steps=2"]) == 0
    )
    manifest = json.loads((run / "manifest.json").read_text())
    assert {"model.safetensors", "config.toml", "geocells/geocells.csv"} <= set(manifest["files"])
    assert manifest["backbone"]["name"] == "tiny-vit" and manifest["image_size"] == 32
    assert manifest["training"]["dataset_fingerprint"] and "test" in manifest["metrics"]
    assert all(k.startswith(("visual.", "head.")) for k in _keys(run))  # text tower dropped at export
    model, info = load_run(run)
    assert info.num_cells == model.head.num_cells > 1 and set(info.aux.regression) >= {"elevation"}
    assert main(["eval", "--run", str(run), "--data", str(tiny), "--out", str(report), "--ablation"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n"] == 4 and set(metrics["accuracy_km"]) == {"1", "25", "200", "750", "2500"}
    assert {
        "median_km",
        "mean_km",
        "geoguessr_score",
        "geocell_top1",
        "geocell_top5",
        "country_accuracy",
    } <= set(metrics)
    assert set(metrics["baselines"]) == {
        "random_uniform_sphere",
        "random_train_location",
        "most_frequent_cell",
        "raw_pixels",
    }
    pixels = metrics["baselines"]["raw_pixels"]  # linear classifier on 8x8 thumbnails of the 4 views
    assert pixels["n"] == 4 and pixels["features"] == 768 and pixels["train_locations"] == 32
    assert {"accuracy_km", "median_km", "mean_km", "geoguessr_score", "country_accuracy"} <= set(pixels)
    assert set(pixels["guess_modes"]) == {"expected_score"}
    assert pixels["guess_modes"]["expected_score"]["n"] == 4
    assert {"driving_side", "country"} <= set(metrics["probes"]) <= {"driving_side", "sign_script", "country",
                                                                      "koppen_main"}
    assert set(metrics["probes_raw_pixels"]) == set(metrics["probes"])
    for p in [*metrics["probes"].values(), *metrics["probes_raw_pixels"].values()]:
        assert 0 <= p["accuracy"] <= 1 and 0 <= p["majority"] <= 1 and p["n_classes"] >= 2
    assert metrics["probes_raw_pixels"]["driving_side"]["accuracy"] == 1.0  # trainkit tints by city
    assert "koppen_main" in metrics["notes"]["probes"]  # Cfa/Cfb: one main class
    assert isinstance(metrics["warnings"], list)
    assert set(metrics["sanity_seconds"]) >= {"thumbnails", "raw_pixels", "probes", "probes_raw_pixels"}
    assert (run / "index" / "manifest.json").is_file()  # written from the training embeddings
    assert set(metrics["guess_modes"]) == {"expected_score", "refined"}
    assert metrics["guess_modes"]["expected_score"]["n"] == 4
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 and "Error CDF" in html
    assert "baseline: raw_pixels (expected_score guess)" in html and "Linear probes" in html
    table = json.loads((report / "ablation.json").read_text())
    assert [r["key"] for r in table["rows"]][:7] == ["text_cue", "full", "no_refinement", "no_weight_average",
                                                     "no_encoder_head", "no_order_fusion", "no_pretraining"]
    by_key = {r["key"]: r for r in table["rows"]}
    assert by_key["no_order_fusion"]["note"] == "n/a: the run averages its views"  # this run uses the mean
    assert by_key["no_encoder_head"]["note"].startswith("n/a: the run's head was fitted on frozen embeddings")
    assert by_key["text_cue"]["note"].startswith("n/a: evaluate with `pigeon eval --text-cue`")  # not asked for
    assert by_key["no_weight_average"]["note"].startswith("n/a: the run keeps no weight average")
    assert all(r["metrics"] is not None for r in table["rows"][2:]
               if r["key"] not in ("no_order_fusion", "no_encoder_head", "no_weight_average"))
    full = by_key["full"]  # refinement needs model.inference and a retrieval index in the run
    assert full["metrics"] is not None or (full["note"].startswith("n/a") and full["note"] in
                                           (report / "ablation.md").read_text())


def test_user_errors_are_reported_without_traceback(tiny, tmp_path, capsys):
    from pigeon.cli import main

    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--data", str(tiny), "--out", str(tmp_path / "r"), "head.nope=1"]) == 2
    assert "unknown key(s) nope" in capsys.readouterr().err


def _keys(run):
    from safetensors import safe_open

    with safe_open(str(run / "model.safetensors"), framework="pt") as f:
        return list(f.keys())


def test_pigeon_pretrain_writes_a_checkpoint_usable_as_backbone_pretrained(tiny, tmp_path):
    from model.network import build_clip
    from pigeon.cli import main

    run = tmp_path / "pre"
    assert (
        main(["pretrain", "--data", str(tiny), "--out", str(run), *TINY_OVERRIDES, "pretrain.max_steps=1"])
        == 0
    )
    path = run / "pretrained-clip.safetensors"
    loaded, _ = build_clip("tiny-vit", pretrained=str(path), image_size=32)
    from safetensors.torch import load_file
    saved = load_file(str(path))
    assert all(torch.equal(v, saved[k]) for k, v in loaded.state_dict().items())
    assert json.loads((run / "state/pretrain/manifest.json").read_text())["progress"]["done"]


@pytest.mark.parametrize("name", ["demo", "demo-vit", "pigeon-paper"])
def test_shipped_configs_load(name):
    from pathlib import Path

    cfg = load_config(TrainConfig, Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml")
    assert cfg.head.tau_km == 75.0 and cfg.head.smoothing
    # PIGEON's cell sizes (30-60 points); the CPU demo scales them with its 3x larger world (90-180)
    assert (cfg.geocells.min_cell_size, cfg.geocells.max_cell_size) == ((90, 180) if name == "demo" else (30, 60))
    if name == "pigeon-paper":
        assert (cfg.backbone.name, cfg.backbone.pretrained, cfg.pretrain.lr, cfg.head.lr) == \
            ("ViT-L-14-336", "openai", 1e-6, 2e-5)
        assert cfg.pretrain.batch_size * cfg.pretrain.grad_accum == 1024
    elif name == "demo":  # the CPU encoder recipe (docs/training.md)
        assert (cfg.backbone.name, cfg.head.fusion, cfg.pretrain.enabled) == \
            ("tiny-resnet-1conv", "concat", False)
        assert cfg.encoder.epochs > 0 and cfg.runtime.device == "auto"
    else:
        assert cfg.backbone.name == "tiny-vit" and cfg.encoder.epochs == 0 and cfg.head.fusion == "mean"


def test_run_config_reads_legacy_index_table(tmp_path):
    """An exported run's config.toml from before ``[index] enabled`` became ``[eval] build_index`` (such as the
    demo checkpoint shipped before 2026-12) still loads; unknown keys elsewhere are still refused."""
    from pathlib import Path

    from model.config import ConfigError, config_to_dict, dump_toml
    from train.config import load_run_config

    demo = load_run_config(Path(__file__).resolve().parents[1] / "checkpoints" / "demo" / "config.toml")
    assert demo.eval.build_index and demo.backbone.name == "tiny-resnet-1conv"
    data = config_to_dict(TrainConfig())
    data["eval"] = {"split": "val", "top_countries": 15}
    data["index"] = {"enabled": False}
    (tmp_path / "config.toml").write_text(dump_toml(data))
    cfg = load_run_config(tmp_path / "config.toml")
    assert (cfg.eval.split, cfg.eval.build_index) == ("val", False)
    data["head"]["bogus"] = 1
    (tmp_path / "config.toml").write_text(dump_toml(data))
    with pytest.raises(ConfigError, match="bogus"):
        load_run_config(tmp_path / "config.toml")
