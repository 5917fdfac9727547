"""model.network: backbone registry, token-mean embedding, GeoHead/GeoModel, and load_run's checks."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from model import network
from model.formats import rundir
from model.formats.manifest import FormatError
from model.network import (
    AuxSpec,
    BackboneUnavailableError,
    GeoHead,
    GeoModel,
    backbone_spec,
    build_clip,
    build_visual,
    image_tensor,
    list_backbones,
    load_run,
    token_mean,
)

TOY_SIZE = {"tiny-vit": 32, "tiny-resnet": 64, "tiny-resnet-1conv": 64, "ViT-B-32": 64}  # toy input sizes (two patches a side at least)


def test_registry_is_explicit_and_names_unknown_backbones():
    assert list_backbones() == ["tiny-vit", "tiny-resnet", "tiny-resnet-1conv", "ViT-B-32", "ViT-L-14-336"]
    with pytest.raises(ValueError, match="unknown backbone 'nope'.*tiny-vit"):
        backbone_spec("nope")


@pytest.mark.parametrize("name", [n for n in list_backbones() if n in TOY_SIZE])
def test_each_offline_backbone_trains_forward_and_backward(name):
    import open_clip

    clip, tokenizer = build_clip(name, image_size=TOY_SIZE[name], seed=0)
    images = torch.randn(2, 3, TOY_SIZE[name], TOY_SIZE[name])
    out = clip(images, tokenizer(["A Street View photo in France.", "A Street View photo in Japan."]))
    loss = open_clip.ClipLoss()(out["image_features"], out["text_features"], out["logit_scale"])
    loss.backward()
    grads = [p.grad for p in clip.visual.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert token_mean(clip.visual, images).shape == (2, backbone_spec(name).width)


def test_one_conv_stem_keeps_the_tower_s_shapes_and_drops_the_half_width_layers(tmp_path):
    """tiny-resnet-1conv: the stem is one stride-2 convolution to the full width; everything after it and every
    output shape are tiny-resnet's. build_clip and build_visual shape it alike (load_run rebuilds the tower with
    build_visual), the seeded init is reproducible, and a checkpoint of it loads back exactly."""
    from safetensors.torch import save_file

    clip, _ = build_clip("tiny-resnet-1conv", image_size=64, seed=3)
    plain, _ = build_clip("tiny-resnet", image_size=64, seed=3)
    stem = clip.visual
    assert (stem.conv1.in_channels, stem.conv1.out_channels, stem.conv1.stride) == (3, 16, (2, 2))
    assert all(isinstance(getattr(stem, k), torch.nn.Identity) for k in ("conv2", "bn2", "conv3", "bn3"))
    assert (plain.visual.conv1.out_channels, plain.visual.conv3.out_channels) == (8, 16)
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert stem.eval().stem(images).shape == plain.visual.eval().stem(images).shape == (3, 16, 16, 16)
        assert token_mean(stem, images).shape == token_mean(plain.visual, images).shape == (3, 512)
    visual = build_visual("tiny-resnet-1conv", 64)
    assert visual.state_dict().keys() == stem.state_dict().keys()
    assert visual.load_state_dict(stem.state_dict()) is not None
    again, _ = build_clip("tiny-resnet-1conv", image_size=64, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), clip.state_dict().values()))
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
    loaded, _ = build_clip("tiny-resnet-1conv", pretrained=str(path), image_size=64, seed=4)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in clip.state_dict().items())
    with pytest.raises(ValueError, match="does not fit backbone 'tiny-resnet'"):
        build_clip("tiny-resnet", pretrained=str(path), image_size=64)
    with pytest.raises(BackboneUnavailableError, match="one-conv stem.*no published weights.*local checkpoint"):
        build_clip("tiny-resnet-1conv", pretrained="openai")


def test_vit_l_resolves_without_being_built():
    import open_clip

    spec = backbone_spec("ViT-L-14-336")
    cfg = open_clip.get_model_config(spec.arch)
    assert (spec.width, spec.image_size, spec.default_pretrained) == (1024, 336, "openai")
    assert cfg["vision_cfg"]["width"] == spec.width and cfg["vision_cfg"]["image_size"] == spec.image_size


def test_pretrained_tag_that_cannot_be_fetched_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailableError, match="'openai'.*not available locally.*HF_HUB_OFFLINE"):
        build_clip("ViT-B-32", pretrained="openai")
    with pytest.raises(BackboneUnavailableError, match="not available locally"):
        build_clip("tiny-vit", pretrained="no-such-tag")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_local_checkpoint_path_loads_exactly(tmp_path, suffix):
    from safetensors.torch import save_file

    src, _ = build_clip("tiny-vit", image_size=32, seed=1)
    state = {k: v.contiguous() for k, v in src.state_dict().items()}
    path = tmp_path / f"clip{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    loaded, _ = build_clip("tiny-vit", pretrained=str(path), image_size=32, seed=2)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state[k]), k
    fresh, _ = build_clip("tiny-vit", image_size=32, seed=2)
    assert not torch.equal(fresh.visual.conv1.weight, loaded.visual.conv1.weight)
    partial = {k: v for k, v in state.items() if k != "visual.conv1.weight"}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(ValueError, match="(?s)does not fit backbone .tiny-vit.*conv1"):
        build_clip("tiny-vit", pretrained=str(tmp_path / "partial.safetensors"), image_size=32)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        build_clip("tiny-vit", pretrained=str(tmp_path / "missing.pt"))


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = build_clip("tiny-vit", image_size=32, seed=5)
    after = torch.rand(1)
    b, _ = build_clip("tiny-vit", image_size=32, seed=5)
    assert torch.equal(before, after)
    # exact: initialisation draws from a seeded generator and does no floating-point reduction
    assert network.state_fingerprint(a.visual) == network.state_fingerprint(b.visual)


def test_token_mean_is_the_mean_of_last_block_tokens_before_ln_post():
    visual = build_visual("tiny-vit", 32).eval()
    captured = {}
    visual.transformer.resblocks[-1].register_forward_hook(lambda m, i, o: captured.update(tokens=o))
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        pooled = visual(images)  # CLS after ln_post and projection: a different vector
        emb = token_mean(visual, images)
    assert captured["tokens"].shape == (3, 1 + 2 * 2, 160)
    torch.testing.assert_close(emb, captured["tokens"].mean(dim=1))
    assert pooled.shape == (3, 128) and emb.shape == (3, 160)


def test_build_visual_matches_the_clip_visual_tower():
    clip, _ = build_clip("tiny-vit", image_size=32)
    visual = build_visual("tiny-vit", 32)
    visual.load_state_dict(clip.visual.state_dict())  # strict: same keys and shapes
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(token_mean(visual, x), token_mean(clip.visual, x))


def test_geomodel_averages_the_view_embeddings():
    visual = build_visual("tiny-vit", 32).eval()
    aux = AuxSpec(("elevation",), (0.0,), (1.0,), ("Af", "Cfb"), True)
    model = GeoModel(visual, GeoHead(160, 7, aux), 32).eval()
    images = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        out = model(images)
        per_view = torch.stack([token_mean(visual, images[:, v]) for v in range(4)], dim=1)
        expected = model.head(per_view.mean(dim=1))
    assert out["cell"].shape == (2, 7) and out["regression"].shape == (2, 1)
    assert out["koppen"].shape == (2, 2) and out["month"].shape == (2, 12)
    torch.testing.assert_close(out["cell"], expected["cell"])


def test_image_tensor_resizes_crops_and_normalises():
    img = Image.new("RGB", (90, 60), (255, 255, 255))
    t = image_tensor(img, 32)
    assert t.shape == (3, 32, 32)
    expected = (1 - np.array(network.OPENAI_MEAN)) / np.array(network.OPENAI_STD)
    np.testing.assert_allclose(t.mean(dim=(1, 2)).numpy(), expected, rtol=1e-5)


# --- run directories ---------------------------------------------------------------------------------


def _geocells_dir(tmp_path, n_points: int, name: str):
    from model.geocells.cells import GeocellConfig, build_geocells_dir

    rng = np.random.default_rng(n_points)
    csv = tmp_path / f"{name}.csv"
    pts = np.c_[rng.uniform(-60, 60, n_points), rng.uniform(-170, 170, n_points)]
    csv.write_text("lat,lon\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in pts))
    build_geocells_dir(csv, tmp_path / name, GeocellConfig(method="naive", min_cell_size=1, max_cell_size=4))
    return tmp_path / name


def _make_run(tmp_path):
    """A consistent run folder (random tiny weights) and the model it holds."""
    from model.geocells.cells import load_geocells

    cells = _geocells_dir(tmp_path, 20, "cells")
    n_cells = len(load_geocells(cells).centroids_deg)
    visual = build_visual("tiny-vit", 32)
    head = GeoHead(160, n_cells, AuxSpec(("elevation",), (10.0,), (2.0,), (), True))
    tensors = {**{f"visual.{k}": v for k, v in visual.state_dict().items()},
               **{f"head.{k}": v for k, v in head.state_dict().items()}}
    manifest = {"backbone": {"name": "tiny-vit"}, "embed_dim": 160, "image_size": 32,
                "mean": list(network.OPENAI_MEAN), "std": list(network.OPENAI_STD), "num_cells": n_cells,
                "aux": head.aux.to_dict(), "views": [0, 90, 180, 270]}
    run = tmp_path / "run"
    rundir.write_run(run, tensors, 'name = "t"\n', cells, manifest)
    return run, GeoModel(visual, head, 32).eval()


def _rehash(run):
    """Make the manifest agree with the files again (to reach the checks behind the hash check)."""
    m = json.loads((run / "manifest.json").read_text())
    m["files"] = {name: rundir.file_entry(run / name) for name in m["files"]}
    (run / "manifest.json").write_text(json.dumps(m))
    return m


def test_load_run_round_trip(tmp_path):
    run, model = _make_run(tmp_path)
    loaded, info = load_run(run, "cpu")
    assert (info.backbone, info.embed_dim, info.image_size, info.num_cells) == (
        "tiny-vit",
        160,
        32,
        model.head.num_cells,
    )
    assert info.aux.regression == ("elevation",) and info.aux.months
    x = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["cell"], model(x)["cell"])
    assert len(info.geocells().centroids_deg) == info.num_cells


@pytest.mark.parametrize(
    "victim", ["model.safetensors", "config.toml", "manifest.json", "geocells/geocells.csv"]
)
def test_load_run_names_missing_files(tmp_path, victim):
    run, _ = _make_run(tmp_path)
    (run / victim).unlink()
    with pytest.raises(FileNotFoundError, match=victim.split("/")[-1]):
        load_run(run)


def test_load_run_rejects_truncated_and_modified_weights(tmp_path):
    run, _ = _make_run(tmp_path)
    path = run / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated"):
        load_run(run)
    _rehash(run)  # even when the manifest was regenerated, a truncated file is not loadable
    with pytest.raises(FormatError, match="not a readable safetensors"):
        load_run(run)
    path.write_bytes(data[:-8] + b"\x00" * 8)
    _rehash(run)
    _, _ = load_run(run)  # consistent again: the tail bytes were weights, still loadable
    path.write_bytes(data[:-8] + b"\x01" * 8)
    with pytest.raises(FormatError, match="sha256 does not match"):
        load_run(run)


def test_load_run_rejects_a_different_number_of_cells(tmp_path):
    run, _ = _make_run(tmp_path)
    other = _geocells_dir(tmp_path, 40, "more-cells")
    shutil.rmtree(run / "geocells")
    shutil.copytree(other, run / "geocells")
    m = json.loads((run / "manifest.json").read_text())
    m["files"] = {k: v for k, v in m["files"].items() if not k.startswith("geocells/")}
    m["files"].update({f"geocells/{p.name}": rundir.file_entry(p) for p in (run / "geocells").iterdir()})
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(FormatError, match="number of cells disagrees"):
        load_run(run)


@pytest.mark.parametrize("name, message", [("ViT-B-32", "do not match the visual tower"),
                                           ("ResNet-50", "unknown backbone 'ResNet-50'")])
def test_load_run_rejects_a_wrong_backbone(tmp_path, name, message):
    run, _ = _make_run(tmp_path)
    m = json.loads((run / "manifest.json").read_text())
    m["backbone"]["name"] = name
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(FormatError, match=message):
        load_run(run)


def test_load_run_rejects_other_schema_versions_and_head_shapes(tmp_path):
    run, _ = _make_run(tmp_path)
    m = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**m, "version": 99}))
    with pytest.raises(FormatError, match="pigeon-run version 99 is not supported"):
        load_run(run)
    (run / "manifest.json").write_text(json.dumps({**m, "aux": {**m["aux"], "months": False}}))
    with pytest.raises(FormatError, match="unexpected.*month"):
        load_run(run)
