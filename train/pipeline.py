"""``pigeon train`` as a library call: geocells -> pretraining -> embeddings -> head -> run directory ->
metrics.

Every stage is resumable: geocells are rebuilt only when their inputs changed, pretraining and head training
resume from their checkpoints under ``RUN/state/`` (refused if those were made from other inputs), embeddings
come from the content-addressed cache. Under torchrun all ranks run this function; rank 0 alone writes files.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model import paths
from model.formats import rundir
from model.config import config_to_dict, dump_toml
from model.formats.dataset import Dataset, load_dataset
from model.formats.manifest import sha256_file
from model.geocells.cells import GeocellConfig, build_geocells_dir, load_geocells
from model.network import OPEN_CLIP_VERSION, backbone_spec, build_clip, tower_image_size, tower_width
from model.views import RETRIEVAL_FUSION, fuse_views
from train.config import TrainConfig, section_hash
from train.data import LocationTable
from train.distributed import Dist, init_distributed, shutdown
from train.embed import cached_embeddings, cached_views, dataset_fingerprint
from train.head import HeadResult, train_head
from train.pretrain import pretrain
from train.targets import build_targets

log = logging.getLogger(__name__)
Progress = Callable[..., None]


@dataclasses.dataclass
class Stage:
    """What the stages share: the dataset, its table, the process group and the run folder."""

    cfg: TrainConfig
    ds: Dataset
    table: LocationTable
    d: Dist
    out: Path
    progress: Progress | None = None

    @property
    def state(self) -> Path:
        return self.out / "state"

    @property
    def cache_dir(self) -> Path:
        return paths.cache_dir(self.cfg.runtime.cache_dir)

    @property
    def config_toml(self) -> str:
        return dump_toml(config_to_dict(self.cfg))


def ensure_geocells(st: Stage, cells_cfg: GeocellConfig, folder: Path) -> Path:
    """Geocells from ``cfg.data.geocells`` or built from the train split into ``folder`` (reused if inputs
    match)."""
    if st.cfg.data.geocells and cells_cfg == st.cfg.geocells:
        path = Path(st.cfg.data.geocells)
        load_geocells(path)  # validates, with a clear error when it is not a geocell folder
        return path
    points = st.ds.root / "locations.csv"
    if st.d.main:
        man = folder / "manifest.json"
        current = json.loads(man.read_text()) if man.is_file() else {}
        if current.get("input", {}).get("sha256") != sha256_file(points) or \
                current.get("config") != config_to_dict(cells_cfg):
            log.info("building %s geocells from the train split of %s", cells_cfg.method, st.ds.root)
            shutil.rmtree(folder, ignore_errors=True)
            build_geocells_dir(points, folder, cells_cfg)
    st.d.barrier()
    return folder


def backbone_clip(st: Stage, pretrained: bool) -> torch.nn.Module:
    """The open_clip model to embed with: contrastively pretrained (resumable) or as initialised/loaded."""
    cfg = st.cfg
    if pretrained and cfg.pretrain.enabled and cfg.pretrain.epochs > 0:
        identity = {
            "config": section_hash(cfg, "backbone", "pretrain"),
            "dataset": dataset_fingerprint(st.ds),
        }
        return pretrain(
            st.ds, st.table, cfg, st.d, st.state / "pretrain", st.config_toml, identity, st.progress
        )
    clip, _ = build_clip(
        cfg.backbone.name, cfg.backbone.pretrained, cfg.backbone.image_size or None, seed=cfg.seed
    )
    return clip.to(st.d.device).eval()


def encoder_identity(st: Stage, cells_dir: Path) -> dict[str, str]:
    """What the encoder stage's checkpoint (``RUN/state/encoder``) was made from: the sections of the config that
    shape it, the dataset and the geocells. A checkpoint of other inputs is not resumed (nor read back by the
    ablation)."""
    return {"config": section_hash(st.cfg, "backbone", "pretrain", "encoder", "head"),
            "dataset": dataset_fingerprint(st.ds), "geocells": sha256_file(Path(cells_dir) / "geocells.csv")}


def supervised_encoder(st: Stage, visual: torch.nn.Module, cells_dir: Path
                       ) -> tuple[torch.nn.Module, dict, HeadResult | None, tuple | None]:
    """The encoder stage (``train/encoder.py``) when ``encoder.epochs`` > 0: the tower trained on pixels with the
    geocell, auxiliary, country and driving-side targets; resumable from ``RUN/state/encoder``. Returns the tower,
    the stage's record for the manifest, the geocell head trained with it and the (rows, pixels) it decoded
    (both None when the stage is off)."""
    from train.encoder import train_encoder

    cfg = st.cfg
    if cfg.encoder.epochs == 0:
        return visual, {}, None, None
    if st.d.world > 1:
        raise ValueError("the encoder stage (encoder.epochs > 0) runs in one process: start it without torchrun")
    cells = load_geocells(cells_dir)
    targets = build_targets(st.table, cells.assign(st.table.latlon_deg[:, 0], st.table.latlon_deg[:, 1]), True)
    identity = encoder_identity(st, cells_dir)
    pp = visual.preprocess_cfg
    pixels = cached_views(st.ds, st.table, list(st.ds.views), tower_image_size(visual), st.cache_dir,
                          cfg.encoder.decode_threads)
    res = train_encoder(visual.to(st.d.device), st.ds, st.table, targets, cells.centroids_deg, cfg.encoder,
                        cfg.head, cfg.seed, pp["mean"], pp["std"], st.state / "encoder", st.config_toml, identity,
                        st.progress, pixels)
    res.visual.preprocess_cfg = pp
    head = HeadResult(res.head.cpu(), res.best_epoch, res.best_val_acc, len(res.history),
                      [{"epoch": h["epoch"], "loss": h["loss"], "val_acc": h.get("val_cell_top1", 0.0)}
                       for h in res.history])
    return res.visual, {"best_epoch": res.best_epoch, "best_val_cell_top1": res.best_val_acc,
                        "history": res.history}, head, res.decoded


def embeddings(st: Stage, visual: torch.nn.Module, decoded: tuple | None = None) -> torch.Tensor:
    """(N, V, D) token-mean embeddings of all locations, all views (cached); ``decoded``: (rows, uint8 pixels)
    already in memory at the tower's input size (the encoder stage's), not decoded again."""
    pp = visual.preprocess_cfg
    return cached_embeddings(visual, st.cfg.backbone.name, st.ds, st.table, st.ds.views, tower_image_size(visual),
                             pp["mean"], pp["std"], st.cache_dir, st.d, st.cfg.runtime.batch_size,
                             st.cfg.runtime.decode_threads, st.progress, decoded)


def location_embeddings(emb: torch.Tensor, single_view: bool, fusion: str = "mean") -> torch.Tensor:
    """(N, V, D) per-view embeddings -> (N, D) the head's input: view 0 alone or all views, fused by
    :func:`model.views.fuse_views` as the Predictor fuses them."""
    return fuse_views(emb[:, :1], "mean") if single_view else fuse_views(emb, fusion)


def fit_head(st: Stage, emb: torch.Tensor, cells_dir: Path, head_cfg, state_root: Path | None):
    """Assign cells, build targets, train the head. Returns (HeadResult, Targets, Geocells).

    Checkpoints go to ``state_root/head-<hash of the head's inputs>``: another head config trains next to the
    first one (reusing pretraining and embeddings) instead of being refused.
    """
    cells = load_geocells(cells_dir)
    x = location_embeddings(emb, head_cfg.single_view, head_cfg.fusion)
    targets = build_targets(st.table, cells.assign(st.table.latlon_deg[:, 0], st.table.latlon_deg[:, 1]),
                            head_cfg.multitask)
    identity = {
        "config": section_hash(dataclasses.replace(st.cfg, head=head_cfg), "backbone", "pretrain", "head"),
        "dataset": dataset_fingerprint(st.ds),
        "geocells": sha256_file(cells_dir / "geocells.csv"),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    state_dir = state_root / f"head-{key}" if state_root else None
    res = train_head(
        x,
        targets,
        st.table.indices("train"),
        st.table.indices("val"),
        cells.centroids_deg,
        head_cfg,
        st.cfg.seed,
        st.d,
        state_dir,
        st.config_toml,
        identity,
        st.progress,
    )
    return res, targets, cells


def export_run(
    st: Stage, visual: torch.nn.Module, res: HeadResult, cells_dir: Path, extra: dict[str, Any]
) -> dict:
    """Write RUN/{model.safetensors, config.toml, geocells/, manifest.json}."""
    spec = backbone_spec(st.cfg.backbone.name)
    tensors = {**{f"visual.{k}": v for k, v in visual.state_dict().items()},
               **{f"head.{k}": v for k, v in res.head.state_dict().items()}}
    pp = visual.preprocess_cfg
    manifest = {
        "backbone": {
            "name": st.cfg.backbone.name,
            "arch": spec.arch,
            "pretrained": st.cfg.backbone.pretrained,
            "quick_gelu": spec.quick_gelu,
        },
        "embed_dim": tower_width(visual),
        "image_size": tower_image_size(visual),
        "mean": list(pp["mean"]),
        "std": list(pp["std"]),
        "num_cells": res.head.num_cells,
        "aux": res.head.aux.to_dict(),
        "views": [0] if st.cfg.head.single_view else list(st.ds.views),
        "fusion": "mean" if st.cfg.head.single_view else st.cfg.head.fusion,
        "embedding": "token-mean of the last visual block (before ln_post), views averaged",
        "training": {
            "dataset": str(st.ds.root),
            "dataset_fingerprint": dataset_fingerprint(st.ds),
            "dataset_manifest_sha256": sha256_file(st.ds.root / "manifest.json"),
            "geocells_sha256": sha256_file(cells_dir / "geocells.csv"),
            "world_size": st.d.world,
            "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run,
            "history": res.history,
            **extra,
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "open_clip": OPEN_CLIP_VERSION,
            "numpy": np.__version__,
        },
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": {"val_geocell_acc": res.best_val_acc},
    }
    return rundir.write_run(st.out, tensors, st.config_toml, cells_dir, manifest)


def write_index(st: Stage, emb: torch.Tensor) -> Path:
    """RUN/index from the training split's cached embeddings (the vectors the Predictor computes: same tower,
    preprocessing and view averaging), so a trained run refines its guesses without a second embedding pass."""
    from model.index import index_from_embeddings

    idx = st.table.indices("train")
    x = location_embeddings(emb[idx], st.cfg.head.single_view, RETRIEVAL_FUSION)
    path = index_from_embeddings(st.out, x.float().numpy(), st.table.latlon_deg[idx], st.cfg.retrieval, extra={
        "dataset": str(Path(st.ds.root).resolve()), "dataset_manifest": st.ds.manifest.get("files", {}),
        "split": "train", "embeddings": "training cache"})
    log.info("retrieval index written to %s", path)
    return path


def _setup(cfg: TrainConfig, data_dir: Path, out_dir: Path, device: torch.device, fresh: bool,
           progress: Progress | None) -> Stage:
    d = init_distributed(device)
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    ds = load_dataset(data_dir, check_images=True)
    out_dir = Path(out_dir)
    if fresh and d.main:
        for name in ("state", rundir.MANIFEST_FILE):
            p = out_dir / name
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    d.barrier()
    return Stage(cfg, ds, LocationTable.from_dataset(ds), d, out_dir, progress if d.main else None)


def run_pretraining(
    cfg: TrainConfig,
    data_dir: Path,
    out_dir: Path,
    device: torch.device,
    fresh: bool = False,
    progress: Progress | None = None,
) -> Path:
    """``pigeon pretrain``: contrastive pretraining only; writes OUT/pretrained-clip.safetensors (an open_clip
    state dict usable as ``backbone.pretrained``) and leaves the resumable state for ``pigeon train --out
    OUT``."""
    if not cfg.pretrain.enabled or cfg.pretrain.epochs == 0:
        raise ValueError("pretraining is disabled in this config (pretrain.enabled / pretrain.epochs)")
    st = _setup(cfg, data_dir, out_dir, device, fresh, progress)
    clip = backbone_clip(st, pretrained=True)
    path = st.out / "pretrained-clip.safetensors"
    if st.d.main:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in clip.state_dict().items()}, str(path))
    st.d.barrier()
    shutdown(st.d)
    return path


def run_training(cfg: TrainConfig, data_dir: Path, out_dir: Path, device: torch.device, fresh: bool = False,
                 progress: Progress | None = None, evaluate: bool = True) -> dict | None:
    """The whole ``pigeon train``; returns the run manifest on rank 0 (None on other ranks)."""
    st = _setup(cfg, data_dir, out_dir, device, fresh, progress)
    d, out_dir = st.d, st.out
    cells_dir = ensure_geocells(st, cfg.geocells, out_dir / "state" / "geocells")
    visual = backbone_clip(st, pretrained=True).visual
    visual, encoder_info, encoder_head, decoded = supervised_encoder(st, visual, cells_dir)
    emb = embeddings(st, visual, decoded)
    del decoded
    if cfg.head.source == "encoder":
        res = encoder_head  # TrainConfig checks that the encoder stage ran
        log.info("head: the encoder stage's (epoch %d, val geocell top-1 %.3f)", res.best_epoch, res.best_val_acc)
    else:
        res, _, _ = fit_head(st, emb, cells_dir, cfg.head, st.state)
    manifest = None
    if d.main:
        extra = {"seed": cfg.seed, "head_source": cfg.head.source,
                 **({"encoder": encoder_info} if encoder_info else {})}
        manifest = export_run(st, visual.cpu(), res, cells_dir, extra)
        if cfg.eval.build_index:
            write_index(st, emb)
        if evaluate and len(st.table.indices(cfg.eval.split)):
            from train.evaluate import evaluate_run

            metrics, _ = evaluate_run(out_dir, data_dir, cfg.eval.split, device, st.cache_dir)
            manifest = rundir.update_manifest(
                out_dir, metrics={**manifest["metrics"], cfg.eval.split: metrics}
            )
    d.barrier()
    shutdown(d)
    return manifest
