"""``TrainConfig``: one frozen dataclass per stage, read from ``configs/*.toml`` by
``model.config.load_config``.

Experiment choices (backbone, geocells, pretraining, head, evaluation) are kept apart from ``[runtime]``
(device, embedding batch, loader workers, cache folder), so one experiment file runs on a laptop or a GPU box.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from model.config import config_from_dict, config_to_dict, read_toml
from model.device import check_device_name
from model.views import FUSIONS
from model.geocells.cells import GeocellConfig
from model.retrieval import RetrievalConfig


@dataclass(frozen=True)
class DataConfig:
    path: str = ""  # dataset folder (``--data`` overrides)
    geocells: str = ""  # an existing geocell folder; "" = build from the train split with [geocells]


@dataclass(frozen=True)
class BackboneConfig:
    name: str = "tiny-vit"  # a key of model.network.BACKBONES
    pretrained: str = ""  # "" random init | "default" | open_clip tag ("openai") | local checkpoint path
    image_size: int = 0  # 0 = the backbone's native size


@dataclass(frozen=True)
class PretrainConfig:
    """Multi-task contrastive pretraining (docs/method.md §2.4). ``batch_size`` = contrastive batch across
    all devices."""

    enabled: bool = True
    epochs: int = 20
    batch_size: int = 256
    grad_accum: int = 1  # micro-steps per optimiser step
    lr: float = 1e-6
    warmup_ratio: float = 0.2  # linear warm-up, then linear decay to 0 (HF "linear" schedule)
    weight_decay: float = 0.001
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    grad_clip: float = 1.0
    views: Literal["all", "one"] = "all"  # per epoch: every view is a sample, or one random view per location
    aux_captions: bool = True  # False: captions are only the location sentence
    save_every_steps: int = 50
    max_steps: int = 0  # stop after this many optimiser steps (0 = run all epochs); for smoke tests

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 2 or self.grad_accum < 1 or self.lr <= 0:
            raise ValueError("pretrain: need epochs >= 0, batch_size >= 2, grad_accum >= 1, lr > 0")


@dataclass(frozen=True)
class EncoderConfig:
    """Supervised multi-task training of the vision tower on pixels, between pretraining and the frozen-embedding
    head (``train/encoder.py``). Off in the paper's config (a pretrained CLIP tower is frozen there); the CPU demo
    trains a tower from scratch and needs it."""

    epochs: int = 0  # 0 = off
    batch_size: int = 64  # locations per step (x views images)
    lr: float = 2e-3
    warmup_ratio: float = 0.03
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    dropout: float = 0.1  # on the fused embedding, before the training heads
    shift_px: int = 4  # random translation augmentation; no flips (they would swap the driving side)
    country_weight: float = 1.0
    driving_side_weight: float = 0.5
    decode_threads: int = 2
    # convolution weights in channels-last (NHWC) layout during this stage, like the inputs model.network.token_mean
    # gives a convolutional tower on CPU; results differ from NCHW only by float rounding. Together 1.4x the
    # images/s of NCHW on 2 AVX2 cores (benchmarks/bench_train.py), most of it from the inputs
    channels_last: bool = True
    # exponential moving average of the weights (and BatchNorm statistics) after every step, the averaged
    # model being the one validated, kept and exported; 0 = off. The decay ramps up as (1 + t) / (10 + t)
    ema_decay: float = 0.0
    max_steps: int = 0  # stop after this many optimiser steps (0 = all epochs); for smoke tests

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 2 or self.lr <= 0 or self.shift_px < 0:
            raise ValueError("encoder: need epochs >= 0, batch_size >= 2, lr > 0, shift_px >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"encoder.ema_decay must be in [0, 1) (0 = off), got {self.ema_decay!r}")


@dataclass(frozen=True)
class HeadConfig:
    """Geocell + auxiliary heads on cached embeddings (docs/method.md §2.6-2.7)."""

    epochs: int = 1000
    batch_size: int = 1024
    lr: float = 2e-5
    weight_decay: float = 0.01
    patience: int = 20  # epochs without a better validation geocell accuracy before stopping (0 = never)
    tau_km: float = 75.0  # haversine smoothing constant (PIGEON 75, PIGEOTTO 65)
    smoothing: bool = True  # False: one-hot cross-entropy on the true cell
    multitask: bool = True  # auxiliary heads (regression x8, Koppen x2, month x1)
    aux_weights: tuple[float, float, float] = (8.0, 2.0, 1.0)
    single_view: bool = False  # use view 0 only instead of fusing all views
    fusion: str = "mean"  # model.views.fuse_views: "mean" (PIGEON) or "concat" (views in heading order)
    standardize: bool = True  # z-score embeddings with train statistics (stored in the head's buffers)
    # "train": a head fitted on the cached embeddings (PIGEON's stage, the only choice for a frozen tower);
    # "encoder": the geocell + auxiliary head the encoder stage trained together with the tower (needs
    # encoder.epochs > 0). A head refitted on a trained tower's embeddings of its own training places sees them
    # better separated than any new place and overfits within a few epochs (docs/training.md)
    source: Literal["train", "encoder"] = "train"
    max_steps: int = 0  # stop after this many optimiser steps (0 = no cap); for smoke tests

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.tau_km <= 0 or self.patience < 0:
            raise ValueError("head: need epochs >= 1, batch_size >= 1, lr > 0, tau_km > 0, patience >= 0")
        if self.fusion not in FUSIONS:
            raise ValueError(f"head.fusion: {self.fusion!r} is not one of {', '.join(FUSIONS)}")
        if self.source not in ("train", "encoder"):
            raise ValueError(f"head.source: {self.source!r} is not one of train, encoder")


@dataclass(frozen=True)
class EvalConfig:
    """What follows the export: the retrieval-refinement index, then evaluation on ``split``."""

    split: Literal["train", "val", "test"] = "test"
    # RUN/index from the training split's embeddings (already computed: no extra pass); `pigeon index`
    # rebuilds it
    build_index: bool = True


@dataclass(frozen=True)
class RuntimeConfig:
    """Hardware, not the experiment: changing these must not change results (up to float noise)."""

    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps (model.device.resolve_device)
    batch_size: int = 64  # images per forward pass when embedding / evaluating
    workers: int = 0  # DataLoader worker processes decoding images for contrastive pretraining
    decode_threads: int = 2  # threads decoding views a chunk ahead of the embedding pass (train.embed)
    threads: int = 0  # torch CPU threads (0 = torch's default)
    cache_dir: str = ""  # embedding cache; "" = model.paths.cache_dir() ($PIGEON_CACHE or data/cache)

    def __post_init__(self) -> None:
        check_device_name(self.device)


@dataclass(frozen=True)
class TrainConfig:
    name: str = "pigeon"
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    geocells: GeocellConfig = field(default_factory=GeocellConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)  # model.retrieval: OPTICS, K, T, cap
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        if self.head.source == "encoder" and self.encoder.epochs == 0:
            raise ValueError("head.source = \"encoder\" takes the head the encoder stage trains: set encoder.epochs "
                             "> 0, or head.source = \"train\"")
        if self.head.source == "encoder" and self.head.single_view:
            raise ValueError("head.source = \"encoder\": the encoder stage trains on all views; head.single_view "
                             "needs head.source = \"train\"")


def load_run_config(path: str | Path) -> TrainConfig:
    """An exported run's ``config.toml`` as a :class:`TrainConfig`. Runs written before ``[index] enabled``
    became ``[eval] build_index`` (and ``[eval] top_countries`` was dropped) are read too, e.g. a shipped
    checkpoint."""
    data = read_toml(path)
    legacy_index = data.pop("index", None)
    ev = data.setdefault("eval", {})
    if isinstance(ev, dict):
        ev.pop("top_countries", None)
        if isinstance(legacy_index, dict) and "enabled" in legacy_index:
            ev.setdefault("build_index", legacy_index["enabled"])
    return config_from_dict(TrainConfig, data, str(path))


def section_hash(cfg: TrainConfig, *sections: str) -> str:
    """sha256 of the named config sections (and the seed): identifies the inputs of one training stage."""
    d = config_to_dict(cfg)
    payload = {"seed": cfg.seed, **{s: d.get(s) for s in sections}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
