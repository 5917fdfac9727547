"""The encoder recipe for 2 CPU cores: a convolutional tower, the supervised encoder stage, order-aware view
fusion, and one resize rule for inputs of any resolution."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainkit import TINY_OVERRIDES, make_dataset

RESNET_OVERRIDES = [o for o in TINY_OVERRIDES if not o.startswith("backbone.image_size")] + [
    "backbone.name=tiny-resnet-1conv", "backbone.image_size=64", "pretrain.enabled=false", "encoder.epochs=2",
    "encoder.batch_size=8", "head.fusion=concat", "head.source=encoder", "encoder.ema_decay=0.9"]


def test_fusion_modes_keep_heading_order_and_refuse_unknown_names():
    from model.views import fuse_views, fused_dim

    emb = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    np.testing.assert_array_equal(fuse_views(emb, "concat")[0], emb[0].reshape(-1))  # view 0 first, then 90, ...
    assert fuse_views(torch.from_numpy(emb), "concat").shape == (2, fused_dim(3, "concat", 4)) == (2, 12)
    np.testing.assert_allclose(fuse_views(emb), emb.mean(1))
    with pytest.raises(ValueError, match="unknown view fusion 'max'"):
        fuse_views(emb, "max")


def test_channels_last_training_layout_matches_the_default_one(monkeypatch):
    """encoder.channels_last changes the memory layout of the weights and inputs, not the function: the same
    weights give the same outputs up to float rounding, and the layout is undone before export."""
    from model.network import AuxSpec, build_visual
    from train.encoder import EncoderNet

    torch.manual_seed(0)
    net = EncoderNet(build_visual("tiny-resnet", 64), 4, "concat", 7, AuxSpec(), 3, 0.0).eval()
    x = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
        net.to_layout(True)
        assert net.visual.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        out = net(x)
        net.to_layout(False)
    assert net.visual.conv1.weight.is_contiguous()
    for key in ("cell", "country", "side"):
        torch.testing.assert_close(out[key], ref[key], rtol=1e-4, atol=1e-4)
    # token_mean feeds a convolutional tower channels-last input on CPU: the same embedding as plain NCHW
    from model import network

    with torch.no_grad():
        nhwc = network.token_mean(net.visual, x[0])
        monkeypatch.setattr(network, "CPU_CHANNELS_LAST", False)
        nchw = network.token_mean(net.visual, x[0])
    torch.testing.assert_close(nhwc, nchw, rtol=1e-4, atol=1e-4)


def test_head_source_encoder_needs_the_encoder_stage():
    from model.config import ConfigError, load_config
    from train.config import TrainConfig

    with pytest.raises(ConfigError, match="set encoder.epochs > 0"):
        load_config(TrainConfig, None, ["head.source=encoder"])
    with pytest.raises(ConfigError, match="head.source.*'frozen' is not one of"):
        load_config(TrainConfig, None, ["head.source=frozen", "encoder.epochs=1"])
    assert load_config(TrainConfig, None, ["head.source=encoder", "encoder.epochs=1"]).head.source == "encoder"


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    from pigeon.cli import main

    root = tmp_path_factory.mktemp("enc")
    data = make_dataset(root / "ds", n=40, size=48)
    run = root / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *RESNET_OVERRIDES]) == 0
    return run, data


def test_encoder_stage_trains_the_tower_and_the_run_records_its_fusion(resnet_run):
    from model.inference import PredictError, Predictor
    from safetensors.torch import load_file

    run, data = resnet_run
    manifest = json.loads((run / "manifest.json").read_text())
    assert (manifest["fusion"], manifest["backbone"]["name"], manifest["image_size"]) == \
        ("concat", "tiny-resnet-1conv", 64)
    enc = manifest["training"]["encoder"]
    assert enc["best_epoch"] >= 1 and len(enc["history"]) == 2
    assert all(row["images_per_s"] > 0 and row["minutes"] > 0 for row in enc["history"])
    assert (run / "state" / "encoder" / "manifest.json").is_file()  # resumable
    # the tower in the run is not the random initialisation: the stage changed its weights
    from model.network import build_clip

    init, _ = build_clip("tiny-resnet-1conv", image_size=64, seed=42)
    trained = load_file(str(run / "model.safetensors"))
    assert not torch.equal(trained["visual.conv1.weight"], init.visual.conv1.weight)
    # head.source = "encoder": the run's head is the one the stage trained with the tower, at its best epoch
    assert manifest["training"]["head_source"] == "encoder"
    state = load_file(str(run / "state" / "encoder" / "model.safetensors"))
    heads = [k for k in trained if k.startswith("head.")]
    assert "head.cell.weight" in heads and len(heads) >= 4
    for k in heads:
        torch.testing.assert_close(trained[k], state[f"best.{k}"], rtol=0, atol=0)
    assert (run / "state").is_dir() and not list((run / "state").glob("head-*"))  # no head was refitted
    pred = Predictor.load(run, device="cpu")
    views = [data / "images" / f"loc0000_{v}.jpg" for v in (0, 90, 180, 270)]
    p = pred.predict(views)
    assert abs(p.cell_probs.sum() - 1) < 1e-5
    with pytest.raises(PredictError, match="fuses exactly 4 views in heading order"):
        pred.predict(views[:1])


def test_ablation_has_encoder_head_and_order_fusion_rows_for_such_a_run(resnet_run, tmp_path):
    from pigeon.cli import main

    run, data = resnet_run
    report = tmp_path / "report"
    assert main(["eval", "--run", str(run), "--data", str(data), "--out", str(report), "--ablation"]) == 0
    rows = {r["key"]: r for r in json.loads((report / "ablation.json").read_text())["rows"]}
    for key in ("no_weight_average", "no_encoder_head", "no_order_fusion", "no_pretraining"):
        assert rows[key]["metrics"] is not None and rows[key]["metrics"]["n"] > 0, key
    # the live weights are not the averaged ones, so the row is a different model; without the stage's
    # checkpoint (an exported run) the row says why it is missing
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("state"))
    assert main(["eval", "--run", str(bare), "--data", str(data), "--out", str(tmp_path / "r2"), "--ablation"]) == 0
    rows = {r["key"]: r for r in json.loads((tmp_path / "r2" / "ablation.json").read_text())["rows"]}
    assert rows["no_weight_average"]["note"].startswith("n/a: the run folder has no encoder-stage checkpoint")


def test_ablation_heads_fitted_in_worker_processes_give_the_rows_fitted_here(resnet_run, tmp_path, monkeypatch):
    """On CPU the ablation's heads are fitted two at a time in worker processes on one torch thread each: the
    rows equal those of the same fits one after the other in this process on one thread."""
    from train import ablation

    run, data = resnet_run
    metrics = json.loads((run / "manifest.json").read_text())["metrics"]["test"]  # the run's own row
    monkeypatch.setattr(ablation.os, "cpu_count", lambda: 2)
    pools, real = [], ablation.pool_context
    monkeypatch.setattr(ablation, "pool_context", lambda *a: pools.append(a) or real(*a))
    pooled = ablation.run_ablation(run, data, tmp_path / "a", "test", torch.device("cpu"), metrics, tmp_path / "c")
    assert pools == [(["train.ablation"],)] and not list((tmp_path / "a" / "ablation").glob("heads-*"))
    monkeypatch.setattr(ablation, "HEAD_WORKERS", 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = ablation.run_ablation(run, data, tmp_path / "b", "test", torch.device("cpu"), metrics, tmp_path / "c")
    finally:
        torch.set_num_threads(threads)
    assert len(pools) == 1
    fitted = ("no_encoder_head", "no_order_fusion", "no_pretraining", "no_semantic_cells", "no_multitask",
              "no_panorama", "no_smoothing")
    rows = {r["key"]: r["metrics"] for r in pooled["rows"]}
    assert all(rows[k] is not None for k in fitted)
    assert [rows[k] for k in fitted] == [{r["key"]: r["metrics"] for r in here["rows"]}[k] for k in fitted]


def test_a_place_seen_at_128_256_and_512_px_gives_close_predictions(resnet_run, tmp_path):
    """One resize rule (model.views.resize_view) for training, eval, predict and the bot's captures: the same
    place at three resolutions reaches the model as nearly the same input and gets nearly the same answer.
    The 512 and 256 px views are rendered natively; the 128 px views are the 512 px render captured smaller
    (the renderer lays a 128 px scene out slightly differently, so a native 128 px render is another picture)."""
    from PIL import Image

    from model.geo import geodata
    from model.inference import Predictor, load_image
    from world.build import render_world
    from world.config import load_world_config

    run, _ = resnet_run
    geo = geodata.load()
    for size in (256, 512):
        render_world(tmp_path / f"w{size}", 11, 3, load_world_config(overrides=[f"render.image_size={size}"]),
                     workers=1, geo=geo)
    small = tmp_path / "w128"
    small.mkdir()
    for src in (tmp_path / "w512" / "images").glob("*.jpg"):
        with Image.open(src) as im:
            im.resize((128, 128), Image.Resampling.LANCZOS).save(small / src.name, quality=90)
    folders = {128: small, 256: tmp_path / "w256" / "images", 512: tmp_path / "w512" / "images"}
    pred = Predictor.load(run, device="cpu", warmup=False)
    ids = sorted(p.name.rsplit("_", 1)[0] for p in small.glob("*_0.jpg"))
    assert len(ids) == 3
    for loc in ids:
        paths = {s: [folders[s] / f"{loc}_{v}.jpg" for v in (0, 90, 180, 270)] for s in folders}
        inputs = {s: torch.stack([pred.model.preprocess(load_image(p)) for p in paths[s]]) for s in folders}
        for s in (128, 256):  # normalised inputs (std units): JPEG and resampling noise only
            assert (inputs[s] - inputs[512]).abs().mean() < 0.08, (loc, s)
        probs = {s: pred.predict(paths[s]).cell_probs for s in folders}
        for s in (128, 256):
            assert 0.5 * np.abs(probs[s] - probs[512]).sum() < 0.25, (loc, s)  # total variation distance


def test_weight_average_follows_the_ramped_decay_and_copies_integer_buffers():
    from train.encoder import WeightAverage

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = WeightAverage(net, 0.9)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net.train()(torch.randn(5, 3))  # moves the BatchNorm statistics and its integer batch counter
    ema.update(net, step=0)  # decay min(0.9, 1/10) = 0.1: mostly the new weights
    live = net.state_dict()
    for k, v in ema.net.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.1 * start[k] + 0.9 * live[k])
        else:
            assert torch.equal(v, live[k])
    assert not any(p.requires_grad for p in ema.net.parameters())
    before = {k: v.clone() for k, v in ema.net.state_dict().items()}
    ema.update(net, step=1000)  # the full decay
    torch.testing.assert_close(ema.net[0].weight, 0.9 * before["0.weight"] + 0.1 * net[0].weight)


def test_encoder_ema_is_validated_exported_and_resumes_to_the_straight_runs_weights(tmp_path):
    """encoder.ema_decay > 0: the averaged weights are the ones kept and exported, they ride in the checkpoint,
    and a run stopped in its second epoch resumes to exactly the straight run's weights (same process, same
    thread count)."""
    from model.config import ConfigError, load_config
    from safetensors.torch import load_file
    from train import pipeline
    from train.config import TrainConfig

    with pytest.raises(ConfigError, match=r"encoder.ema_decay must be in \[0, 1\)"):
        load_config(TrainConfig, None, ["encoder.ema_decay=1.0"])
    data = make_dataset(tmp_path / "ds", n=40, size=48)
    cfg = load_config(TrainConfig, None, RESNET_OVERRIDES + [
        "encoder.ema_decay=0.9", f"runtime.cache_dir={tmp_path / 'cache'}"])

    def encoder(out, progress=None):
        st = pipeline._setup(cfg, data, out, torch.device("cpu"), False, progress)
        cells = pipeline.ensure_geocells(st, cfg.geocells, out / "state" / "geocells")
        return pipeline.supervised_encoder(st, pipeline.backbone_clip(st, pretrained=True).visual, cells)

    class Stop(Exception):
        pass

    def stop_in_epoch_two(name, step, total, **_):
        if name == "encoder" and step > total // 2:
            raise Stop

    straight, info, head, _ = encoder(tmp_path / "a")
    with pytest.raises(Stop):
        encoder(tmp_path / "b", stop_in_epoch_two)
    resumed, info_b, head_b, _ = encoder(tmp_path / "b")
    learned = lambda hist: [{k: v for k, v in row.items() if k not in ("images_per_s", "minutes")} for row in hist]
    assert learned(info_b["history"]) == learned(info["history"]) and len(info["history"]) == 2
    for a, b in ((straight, resumed), (head.head, head_b.head)):
        for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), k
    state = load_file(str(tmp_path / "a" / "state" / "encoder" / "model.safetensors"))
    ema = {k[4:]: v for k, v in state.items() if k.startswith("ema.")}
    assert ema and any(not torch.equal(v, state[f"net.{k}"]) for k, v in ema.items() if v.is_floating_point())
    best = {k[5:]: v for k, v in state.items() if k.startswith("best.")}
    for k, v in straight.state_dict().items():  # the exported tower is the averaged one of the best epoch
        torch.testing.assert_close(v, best[f"visual.{k}"], rtol=0, atol=0)
    if info["best_epoch"] == 2:
        for k, v in best.items():
            torch.testing.assert_close(v, ema[k], rtol=0, atol=0)


def test_views_cache_is_decoded_once_and_read_by_the_encoder_and_later_embedding_passes(tmp_path, caplog):
    """The pipeline decodes every location's views once into CACHE/views-<key>.npy: the encoder trains from it
    to the weights it reaches from its own decode, a later embedding pass (another command: the ablation's
    untrained tower) reads it instead of the JPEGs, and a damaged, stale or foreign file is decoded again, never
    trusted."""
    import logging

    from model.config import load_config
    from model.formats.dataset import load_dataset
    from model.geocells.cells import load_geocells
    from PIL import Image
    from train import pipeline
    from train.config import TrainConfig
    from train.data import LocationTable, decode_views
    from train.distributed import Dist
    from train.embed import cached_embeddings, cached_views, embed_locations, views_cache_path
    from train.encoder import train_encoder
    from train.targets import build_targets

    data, cache = make_dataset(tmp_path / "ds", n=40, size=48), tmp_path / "cache"
    cfg = load_config(TrainConfig, None, RESNET_OVERRIDES + ["encoder.epochs=1", f"runtime.cache_dir={cache}"])
    ds = load_dataset(data)
    table, views = LocationTable.from_dataset(ds), list(ds.views)
    st = pipeline._setup(cfg, data, tmp_path / "run", torch.device("cpu"), False, None)
    cells_dir = pipeline.ensure_geocells(st, cfg.geocells, tmp_path / "run" / "state" / "geocells")
    _, _, _, decoded = pipeline.supervised_encoder(st, pipeline.backbone_clip(st, pretrained=True).visual,
                                                   cells_dir)
    path = views_cache_path(ds, table, views, 64, cache)
    assert sorted(cache.glob("views-*")) == [path]
    px = decode_views(ds, table, np.arange(len(table)), views, 64)
    np.testing.assert_array_equal(np.load(path), px)
    assert list(decoded[0]) == list(range(len(table)))
    np.testing.assert_array_equal(decoded[1], px)

    cells = load_geocells(cells_dir)
    targets = build_targets(table, cells.assign(table.latlon_deg[:, 0], table.latlon_deg[:, 1]), True)

    def encoder(pixels):
        visual = pipeline.backbone_clip(st, pretrained=True).visual
        pp = visual.preprocess_cfg
        return train_encoder(visual, ds, table, targets, cells.centroids_deg, cfg.encoder, cfg.head, cfg.seed,
                             pp["mean"], pp["std"], None, "", {}, None, pixels)

    own, given = encoder(None), encoder(np.load(path, mmap_mode="r"))
    for (k, a), b in zip(own.visual.state_dict().items(), given.visual.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match=r"expected \(40, 4, 64, 64, 3\) uint8"):
        encoder(px[:5])

    caplog.set_level(logging.INFO, logger="train.embed")
    visual = pipeline.backbone_clip(st, pretrained=False).visual
    pp = visual.preprocess_cfg
    emb = cached_embeddings(visual, "tiny-resnet", ds, table, views, 64, pp["mean"], pp["std"], cache, Dist(), 16)
    assert f"pixels from {path}" in caplog.text
    ref = embed_locations(visual, ds, table, np.arange(len(table)), views, 64, pp["mean"], pp["std"], Dist(), 16)
    torch.testing.assert_close(emb, ref)

    caplog.clear()
    path.write_bytes(b"not an npy file")
    assert cached_views(ds, table, views, 64, cache, create=False) is None and "unreadable" in caplog.text
    np.testing.assert_array_equal(cached_views(ds, table, views, 64, cache), px)  # decoded again, rewritten
    np.testing.assert_array_equal(np.load(path), px)
    np.save(path, px[:, :, :32, :32])  # another size under this key
    assert cached_views(ds, table, views, 64, cache, create=False) is None and "decoding again" in caplog.text
    assert views_cache_path(ds, table, views, 32, cache) != path
    img = ds.image_path(table.ids[0], views[0])
    Image.new("RGB", (48, 48), (255, 0, 0)).save(img, format="JPEG")  # another image: another key
    assert views_cache_path(load_dataset(data), table, views, 64, cache) != path
