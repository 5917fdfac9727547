"""Training throughput on this machine's CPU -> benchmarks/results/train.json.

* encoder_step: one step of the supervised encoder stage of ``configs/demo.toml`` (its tower, size, batch and
  fusion) on in-memory uint8 views, images/s and minutes per epoch of the demo world's train split;
  encoder_step_nchw: the same step on NCHW inputs and weights; encoder_step_other_stem: the same step with the
  demo tower's other stem (``STEM_AB``: open_clip's three convolutions or one), both alternated with encoder_step
  in one run;
  encoder_step_allocator: the same step in fresh processes with glibc malloc's defaults against
  ``model.workers.retain_freed_memory`` (what `pigeon train` applies), images/s and system seconds per step;
* pretrain: one full contrastive step (both towers, ClipLoss, AdamW) of the demo backbone at the demo size,
  images/s, on in-memory tensors and real PIGEON captions;
* loading: JPEG decode + preprocess + caption + tokenise of pretraining samples (CaptionedViews), images/s;
* embed / embed_demo: token-mean embedding without gradients (tiny-vit / the demo tower), images/s;
* fit_linear: one linear probe fit of `pigeon eval` (``train.probes.fit_linear``) at the demo's size, and its
  forward + backward with the weights in nn.Linear's layout against the x @ W layout, alternated in one run;
* head: geocell head epochs with haversine smoothing + aux losses on cached-size features, locations/s;
* per epoch of the demo config on the demo world (its train split, or 8,676 locations x 4 views when the dataset
  is not there): images/s and minutes per epoch of the pretraining stage (``pretrain_step`` alone, and
  ``pretrain_epoch`` = decode + step one after the other) and of the head stage (``head``: images/s = locations/s
  x views, the views' embeddings each location carries).
Run: ``.venv/bin/python benchmarks/bench_train.py [--quick]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _util import timeit, write  # noqa: E402


def bench_pretrain(size: int, batch: int, repeat: int) -> dict:
    from model.network import build_clip, clip_loss  # open_clip only through model.network

    from train.captions import CaptionInfo, sample_caption
    from train.config import PretrainConfig
    from train.pretrain import make_optimizer

    clip, tok = build_clip("tiny-vit", image_size=size, seed=0)
    clip.train()
    opt = make_optimizer(clip, PretrainConfig(lr=1e-4))
    loss_fn = clip_loss()
    rng = np.random.default_rng(0)
    info = CaptionInfo("France", "Brittany", "Brest", "a temperate oceanic climate", "right", 10.0, 5)
    images = torch.randn(batch, 3, size, size)
    tokens = tok([sample_caption(rng, info) for _ in range(batch)])

    def step():
        out = clip(images, tokens)
        loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = timeit(step, repeat=repeat, warmup=1)
    return {**t, "batch": batch, "image_size": size, "images_per_s": batch / t["median_s"]}


def bench_loading(size: int, n: int) -> dict:
    from model.formats.dataset import load_dataset
    from model.network import build_clip
    from train.captions import CaptionInfo
    from train.data import CaptionedViews, LocationTable, epoch_samples
    from trainkit import make_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ds = load_dataset(make_dataset(Path(tmp) / "ds", n=n, size=256))
        table = LocationTable.from_dataset(ds)
        _, tok = build_clip("tiny-vit", image_size=size)
        samples = epoch_samples(np.arange(n), 4, "one", 0, 0)
        data = CaptionedViews(ds, table, samples, [CaptionInfo.from_aux(a) for a in table.aux], size,
                              (0.5,) * 3, (0.25,) * 3, tok, 0, 0, True)
        t = timeit(lambda: [data[k] for k in range(len(data))], repeat=3, warmup=1)
    return {**t, "samples": n, "source_image_px": 256, "images_per_s": n / t["median_s"]}


# the demo tower with open_clip's three-convolution stem and with one convolution (model.network._one_conv_stem)
STEM_AB = {"tiny-resnet": "tiny-resnet-1conv", "tiny-resnet-1conv": "tiny-resnet"}


def bench_encoder(backbone: str, size: int, locations: int, views: int, fusion: str, repeat: int,
                  channels_last: bool = True) -> dict:
    """One step of the supervised encoder stage (train/encoder.py) as the demo config runs it: uint8 views held in
    memory -> normalise -> tower -> fused embedding -> geocell, aux, country and driving-side heads -> AdamW.
    ``channels_last``: encoder.channels_last (the weights' and inputs' memory layout)."""
    from model.network import AuxSpec, build_clip, normalize_uint8
    from train.config import EncoderConfig
    from train.encoder import EncoderNet
    from train.pretrain import make_optimizer

    clip, _ = build_clip(backbone, image_size=size, seed=0)
    aux = AuxSpec(("elevation",) * 6, (0.0,) * 6, (1.0,) * 6, tuple(f"k{i}" for i in range(30)), True)
    net = EncoderNet(clip.visual, views, fusion, 300, aux, 98, 0.1).train().to_layout(channels_last)
    opt = make_optimizer(net, EncoderConfig())
    pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (locations, views, size, size, 3),
                                                                  dtype=np.uint8))

    def step():
        x = normalize_uint8(pixels)  # NHWC memory order
        out = net(x if channels_last else x.contiguous())
        loss = out["cell"].logsumexp(1).mean() + out["country"].logsumexp(1).mean() + out["side"].sum() * 0
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = timeit(step, repeat=repeat, warmup=1)
    return {**t, "backbone": backbone, "image_size": size, "locations_per_step": locations, "views": views,
            "fusion": fusion, "channels_last": channels_last, "images_per_s": locations * views / t["median_s"]}


def bench_embed(size: int, batch: int, repeat: int, backbone: str = "tiny-vit") -> dict:
    from model.network import build_visual, token_mean

    visual = build_visual(backbone, size).eval()
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        t = timeit(lambda: token_mean(visual, x), repeat=repeat, warmup=1)
    return {**t, "backbone": backbone, "batch": batch, "image_size": size, "images_per_s": batch / t["median_s"]}


def bench_embed_pass(backbone: str, size: int, n: int, repeat: int) -> dict:
    """The whole embedding pass of ``train.embed.embed_locations`` (as `pigeon train` and `pigeon eval` run it):
    JPEGs decoded and resized in threads a chunk ahead, normalised, embedded; ``n`` locations of 4 views
    rendered at 128 px."""
    from model.formats.dataset import load_dataset
    from model.network import build_visual
    from train.data import LocationTable
    from train.distributed import Dist
    from train.embed import embed_locations
    from trainkit import make_dataset

    visual = build_visual(backbone, size).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ds = load_dataset(make_dataset(Path(tmp) / "ds", n=n, size=128))
        table = LocationTable.from_dataset(ds)
        t = timeit(lambda: embed_locations(visual, ds, table, np.arange(n), ds.views, size, (0.5,) * 3, (0.25,) * 3,
                                           Dist(), 256, 2), repeat=repeat, warmup=1)
    return {**t, "backbone": backbone, "image_size": size, "source_image_px": 128, "locations": n,
            "images_per_s": n * len(ds.views) / t["median_s"]}


def bench_head(n: int, cells: int, epochs: int) -> dict:
    from model.network import AuxSpec
    from train.config import HeadConfig
    from train.head import train_head
    from train.targets import Targets

    rng = np.random.default_rng(0)
    latlon = np.c_[rng.uniform(-60, 70, n), rng.uniform(-180, 180, n)]
    cent = np.c_[rng.uniform(-60, 70, cells), rng.uniform(-180, 180, cells)]
    aux = AuxSpec(("elevation", "temp_avg"), (0.0, 0.0), (1.0, 1.0), tuple(f"k{i}" for i in range(31)), True)
    t = Targets(rng.integers(0, cells, n), latlon, rng.normal(size=(n, 2)).astype(np.float32),
                rng.integers(-1, 31, n), rng.integers(-1, 12, n), aux)
    x = torch.randn(n, 160)
    cfg = HeadConfig(epochs=epochs, batch_size=256, lr=1e-3, patience=0)
    split = int(0.9 * n)
    timing = timeit(
        lambda: train_head(x, t, np.arange(split), np.arange(split, n), cent, cfg, 0), repeat=3, warmup=1
    )
    return {**timing, "locations": split, "cells": cells, "epochs": epochs,
            "locations_per_s": split * epochs / timing["median_s"]}


def bench_fit_linear(n: int, dims: int, classes: int, iters: int, pairs: int) -> dict:
    """``train.probes.fit_linear`` (the linear probes and the raw-pixel baseline of `pigeon eval`) on one
    thread on a problem the size of the demo's embedding probes (37,426 train rows x 2,048 features; 5
    classes: the Koppen probe), ``iters`` L-BFGS iterations: seconds per fit. And the forward + backward it
    repeats, with W in nn.Linear's (C, D) layout as fit_linear keeps it against x @ W with W as (D, C), whose
    weight gradient x^T g MKL runs far slower on some CPUs; alternated ``pairs`` times, ms and the ratio."""
    from train import probes

    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, n)
    x = (rng.normal(size=(n, dims)) + rng.normal(size=(classes, dims))[y] * 0.3).astype(np.float32)
    xt, g = torch.from_numpy(x), torch.randn(n, classes)
    w_cd = torch.zeros(classes, dims, requires_grad=True)
    w_dc = torch.zeros(dims, classes, requires_grad=True)
    grad = {"nn_linear_layout": lambda: (torch.nn.functional.linear(xt, w_cd) * g).sum().backward(),
            "x_at_w_layout": lambda: (xt @ w_dc * g).sum().backward()}
    ms = {name: [] for name in grad}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as fit_linear runs
    try:
        for _ in range(pairs):
            for name, step in grad.items():
                ms[name].append(timeit(step, repeat=3, warmup=1)["median_s"] * 1000)
    finally:
        torch.set_num_threads(threads)
    fit = timeit(lambda: probes.fit_linear(x, y, classes, max_iter=iters), repeat=pairs, warmup=0)
    return {"rows": n, "features": dims, "classes": classes, "lbfgs_iterations": iters,
            "fit_seconds": fit["median_s"],
            **{f"gradient_ms_{name}": float(np.median(v)) for name, v in ms.items()},
            "gradient_speedup": float(np.median(np.array(ms["x_at_w_layout"])
                                                / np.array(ms["nn_linear_layout"])))}


def demo_epoch() -> dict:
    """Epoch sizes of ``configs/demo.toml`` on its dataset: train locations, views, pretraining images."""
    import json

    from model.config import load_config
    from train.config import TrainConfig

    cfg = load_config(TrainConfig, ROOT / "configs" / "demo.toml")
    manifest = ROOT / cfg.data.path / "manifest.json"
    n, views, source = 8676, 4, "default (demo world not found)"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        n, views, source = int(m["counts"]["train"]), len(m.get("views", [0])), str(cfg.data.path)
    return {"dataset": source, "train_locations": n, "views": views, "pretrain_views": cfg.pretrain.views,
            "pretrain_images_per_epoch": n * (views if cfg.pretrain.views == "all" else 1),
            "backbone": cfg.backbone.name, "image_size": cfg.backbone.image_size, "fusion": cfg.head.fusion,
            "encoder_batch": cfg.encoder.batch_size, "encoder_epochs": cfg.encoder.epochs,
            "channels_last": cfg.encoder.channels_last}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median images/s."""
    return sorted(runs, key=lambda r: r["images_per_s"])[len(runs) // 2]


def add_epoch_estimates(results: dict, epoch: dict) -> None:
    """images/s and minutes per epoch of the pretraining and head stages, from the measured rates."""
    per_epoch = epoch["pretrain_images_per_epoch"]
    step, load = results["pretrain_step"], results["pretrain_loading"]["images_per_s"]
    step["minutes_per_epoch"] = per_epoch / step["images_per_s"] / 60
    both = 1 / (1 / step["images_per_s"] + 1 / load)  # decode, then step, in one process (0 loader workers)
    results["pretrain_epoch"] = {"images_per_epoch": per_epoch, "images_per_s": both,
                                 "minutes_per_epoch": per_epoch / both / 60}
    enc = results.get("encoder_step")
    if enc:
        enc["minutes_per_epoch"] = epoch["train_locations"] * epoch["views"] / enc["images_per_s"] / 60
        enc["minutes_for_config_epochs"] = enc["minutes_per_epoch"] * epoch["encoder_epochs"]
    head = results["head"]
    head["images_per_s"] = head["locations_per_s"] * epoch["views"]
    head["minutes_per_epoch"] = epoch["train_locations"] / head["locations_per_s"] / 60
    results["epoch"] = epoch


def bench_allocator(args_enc: tuple, pairs: int) -> dict:
    """The demo encoder step in fresh processes, glibc malloc's defaults against
    ``model.workers.retain_freed_memory`` (what the batch verbs of the CLI apply; process-wide, so each side
    needs its own process), alternated ``pairs`` times: images/s and the system CPU seconds per step."""
    import json
    import subprocess

    def child(mode: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--encoder-step-child", mode, json.dumps(args_enc)],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    runs = {"default": [], "retain_freed_memory": []}
    for _ in range(pairs):
        for mode in runs:
            runs[mode].append(child(mode))
    out = {mode: {"images_per_s": float(np.median([r["images_per_s"] for r in rs])),
                  "system_s_per_step": float(np.median([r["system_s_per_step"] for r in rs])),
                  "runs": rs} for mode, rs in runs.items()}
    out["speedup"] = float(np.median([b["images_per_s"] / a["images_per_s"]
                                      for a, b in zip(runs["default"], runs["retain_freed_memory"])]))
    return out


def _encoder_step_child(mode: str, args_json: str) -> None:
    import json
    import resource

    from model.workers import retain_freed_memory

    if mode == "retain_freed_memory":
        retain_freed_memory()
    backbone, size, locations, views, fusion, repeat = json.loads(args_json)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    r = bench_encoder(backbone, size, locations, views, fusion, repeat)
    steps = repeat + 1  # timeit's warm-up step included
    print(json.dumps({"images_per_s": r["images_per_s"],
                      "system_s_per_step": (resource.getrusage(resource.RUSAGE_SELF).ru_stime - before) / steps}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    ap.add_argument("--encoder-step-child", nargs=2, metavar=("MODE", "ARGS_JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.encoder_step_child:
        _encoder_step_child(*args.encoder_step_child)
        return
    rep = 2 if args.quick else 5
    load_before = os.getloadavg()[0]
    results = {
        "what": "training throughput on CPU, medians: the demo config's encoder stage (encoder_step) and the "
                "tiny-vit contrastive stage of the previous recipe (pretrain_*)",
        "torch_threads": torch.get_num_threads(),
        "pretrain_step": bench_pretrain(128, 64, rep),
        "pretrain_loading": bench_loading(128, 64 if args.quick else 256),
        "embed": bench_embed(128, 128, rep),
        "head": bench_head(8000, 200, 5 if args.quick else 10),
    }
    epoch = demo_epoch()
    args_enc = (epoch["backbone"], epoch["image_size"], epoch["encoder_batch"], epoch["views"], epoch["fusion"], rep)
    # A/B in one run, alternated so load drift hits both alike: the demo config (channels-last input on CPU,
    # model.network.CPU_CHANNELS_LAST, and encoder.channels_last weights) against plain NCHW input and weights
    from model import network

    # and against the same tower with its other stem
    other = STEM_AB.get(epoch["backbone"])
    other_stem = (other,) + args_enc[1:] if other else None
    nchw, config, stem = [], [], []
    try:
        for _ in range(1 if args.quick else 3):
            network.CPU_CHANNELS_LAST = False
            nchw.append(bench_encoder(*args_enc, channels_last=False))
            network.CPU_CHANNELS_LAST = True
            config.append(bench_encoder(*args_enc, channels_last=epoch["channels_last"]))
            if other_stem:
                stem.append(bench_encoder(*other_stem, channels_last=epoch["channels_last"]))
    finally:
        network.CPU_CHANNELS_LAST = True
    results["encoder_step"] = _median_run(config)
    results["encoder_step_nchw"] = _median_run(nchw)
    results["encoder_speedup_over_nchw"] = results["encoder_step"]["images_per_s"] / results["encoder_step_nchw"][
        "images_per_s"]
    if stem:
        results["encoder_step_other_stem"] = _median_run(stem)
        results["encoder_speedup_over_other_stem"] = (results["encoder_step"]["images_per_s"]
                                                      / results["encoder_step_other_stem"]["images_per_s"])
    results["encoder_step_allocator"] = bench_allocator(args_enc[:5] + (10 if args.quick else 30,),
                                                        1 if args.quick else 3)
    results["embed_demo"] = bench_embed(epoch["image_size"], 256, rep, epoch["backbone"])  # channels-last input
    results["embed_pass"] = bench_embed_pass(epoch["backbone"], epoch["image_size"], 128 if args.quick else 512,
                                             2 if args.quick else 3)
    results["fit_linear"] = bench_fit_linear(8000 if args.quick else 37426, 2048, 5, 10,
                                             1 if args.quick else 3)
    add_epoch_estimates(results, epoch)
    results["load_average_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    write("train", results)


if __name__ == "__main__":
    main()
