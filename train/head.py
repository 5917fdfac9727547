"""Geocell head training on cached embeddings (docs/method.md §2.6-2.7).

Loss = -sum_i t_i log p_i with PIGEON's haversine-smoothed targets t_i = exp(-(d_i - min_j d_j) / tau),
**not** renormalised (docs/method.md §2.6; the nearest centroid gets weight 1), or one-hot cross-entropy
without smoothing; plus the auxiliary losses (masked MSE x 8, Koppen CE x 2, month CE x 1). AdamW without schedule,
validation top-1 geocell accuracy every epoch, best checkpoint kept, early stopping after ``patience`` epochs
without improvement, resumable from a checkpoint written every epoch. Under DDP each global batch is split
between the ranks.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.geo.geography import pairwise_haversine_km_torch
from model.network import GeoHead
from train.config import HeadConfig
from train.distributed import Dist
from train.state import load_checkpoint, module_weights, save_checkpoint
from train.targets import Targets

log = logging.getLogger(__name__)


def smoothed_targets(latlon_deg: torch.Tensor, centroids_deg: torch.Tensor, tau_km: float) -> torch.Tensor:
    """PIGEON soft labels (B, C): exp(-(d_i - min_j d_j) / tau_km); not renormalised, NaN/inf -> 0."""
    d = pairwise_haversine_km_torch(latlon_deg.double(), centroids_deg.double())
    t = torch.exp(-(d - d.min(dim=1, keepdim=True).values) / tau_km)
    return torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0).float()


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_i t_i log softmax(logits)_i; targets (B, C) need not sum to 1."""
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def cell_loss(
    logits: torch.Tensor,
    latlon_deg: torch.Tensor,
    cells: torch.Tensor,
    centroids_deg: torch.Tensor,
    tau_km: float,
    smoothing: bool,
) -> torch.Tensor:
    """Haversine-smoothed soft cross-entropy (smoothing) or plain cross-entropy on ``cells``."""
    if not smoothing:
        return F.cross_entropy(logits.float(), cells)
    return soft_cross_entropy(logits, smoothed_targets(latlon_deg, centroids_deg, tau_km))


def masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the rows whose label is known (y >= 0); 0 when none is (no NaN)."""
    ce = F.cross_entropy(logits, y.clamp(min=0), reduction="none") * (y >= 0)
    return ce.sum() / (y >= 0).sum().clamp(min=1)


def aux_loss(out: dict[str, torch.Tensor], reg: torch.Tensor, koppen: torch.Tensor, month: torch.Tensor,
             weights: tuple[float, float, float]) -> torch.Tensor:
    """Weighted masked MSE + Koppen CE + month CE; unknown targets (NaN / -1) contribute nothing.

    Written without data-dependent branches so every rank of a DDP job builds the same graph.
    """
    total = out["cell"].new_zeros(())
    if "regression" in out:
        known = torch.isfinite(reg)
        sq = (out["regression"] - torch.nan_to_num(reg)) ** 2 * known
        total = total + weights[0] * sq.sum() / known.sum().clamp(min=1)
    for key, y, w in (("koppen", koppen, weights[1]), ("month", month, weights[2])):
        if key in out:
            total = total + w * masked_cross_entropy(out[key], y)
    return total


@torch.no_grad()
def predict_logits(head: GeoHead, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    head.eval()
    return torch.cat([head(x[i:i + batch])["cell"] for i in range(0, len(x), batch)]) if len(x) else \
        torch.zeros((0, head.num_cells))


def topk_accuracy(logits: torch.Tensor, cells: np.ndarray, k: int = 1) -> float:
    if len(cells) == 0:
        return float("nan")
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices.cpu().numpy()
    return float((top == np.asarray(cells)[:, None]).any(axis=1).mean())


@dataclass
class HeadResult:
    head: GeoHead  # the best-validation head
    best_epoch: int
    best_val_acc: float
    epochs_run: int
    history: list[dict] = field(default_factory=list)


def _init_head(
    x_train: torch.Tensor, num_cells: int, targets: Targets, cfg: HeadConfig, seed: int
) -> GeoHead:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = GeoHead(x_train.shape[1], num_cells, targets.aux if cfg.multitask else None)
    if cfg.standardize and len(x_train) > 1:
        head.feature_mean.copy_(x_train.mean(0))
        head.feature_std.copy_(x_train.std(0).clamp(min=1e-6))
    return head


@dataclass
class _Progress:
    """Resumable counters of a head training run (saved in the checkpoint manifest)."""

    epoch: int = 0
    steps: int = 0
    best_acc: float = -1.0
    best_epoch: int = -1
    bad: int = 0  # epochs since the last improvement
    history: list = field(default_factory=list)

    def done(self, cfg: HeadConfig) -> bool:
        return bool(self.epoch >= cfg.epochs or (cfg.patience and self.bad >= cfg.patience)
                    or (cfg.max_steps and self.steps >= cfg.max_steps))


def train_head(x: torch.Tensor, targets: Targets, train_idx: np.ndarray, val_idx: np.ndarray,
               centroids_deg: np.ndarray, cfg: HeadConfig, seed: int, d: Dist | None = None,
               state_dir: Path | None = None, config_toml: str = "", identity: dict | None = None,
               progress: Callable[..., None] | None = None) -> HeadResult:
    """Train a ``GeoHead`` on features ``x`` (N, D) for locations ``train_idx``; select on ``val_idx``."""
    d = d or Dist()
    if len(train_idx) == 0:
        raise ValueError("the dataset has no 'train' locations to train the head on")
    if len(val_idx) == 0:
        log.warning("no 'val' locations: selecting the head on train accuracy instead")
        val_idx = train_idx
    head = _init_head(x[train_idx], len(centroids_deg), targets, cfg, seed).to(d.device)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, pr = copy.deepcopy(head), _Progress()
    ck = load_checkpoint(state_dir, identity or {}) if state_dir else None
    if ck is not None:
        head.load_state_dict(module_weights(ck["weights"], "head"))
        best.load_state_dict(module_weights(ck["weights"], "best"))
        opt.load_state_dict(ck["optimizer"])
        pr = _Progress(**{k: v for k, v in ck["progress"].items() if k != "done"})
    net = nn.parallel.DistributedDataParallel(head) if d.enabled else head
    tensors = _device_targets(x, targets, centroids_deg, train_idx, cfg, d.device)
    while not pr.done(cfg):
        losses = _epoch(net, opt, tensors, train_idx, cfg, seed, d, pr)
        pr.epoch += 1
        acc = topk_accuracy(predict_logits(head, tensors["x"][val_idx]), targets.cells[val_idx])
        pr.history.append({"epoch": pr.epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                           "val_acc": acc})
        if acc > pr.best_acc:
            best.load_state_dict(head.state_dict())
            pr.best_acc, pr.best_epoch, pr.bad = acc, pr.epoch, 0
        else:
            pr.bad += 1
        if state_dir and d.main:
            save_checkpoint(state_dir, {"head": head, "best": best}, opt, config_toml, identity or {},
                            {**dataclasses.asdict(pr), "done": pr.done(cfg)})
        if progress:
            progress("head", pr.epoch, cfg.epochs, loss=pr.history[-1]["loss"], val_acc=acc, best=pr.best_acc)
    d.barrier()
    return HeadResult(best.cpu().eval(), pr.best_epoch, pr.best_acc, pr.epoch, pr.history)


def _epoch(net: nn.Module, opt: torch.optim.Optimizer, tensors: dict, train_idx: np.ndarray, cfg: HeadConfig,
           seed: int, d: Dist, pr: _Progress) -> list[float]:
    """One pass over the shuffled train split (the order depends only on seed and epoch); returns batch
    losses."""
    net.train()
    order = train_idx[np.random.default_rng((seed, pr.epoch, 104729)).permutation(len(train_idx))]
    losses = []
    for start in range(0, len(order), cfg.batch_size):
        chunk = order[start:start + cfg.batch_size]
        if len(chunk) < d.world:
            continue  # every rank needs a non-empty share
        losses.append(_step(net, opt, tensors, chunk[d.rank::d.world], cfg))
        pr.steps += 1
        if cfg.max_steps and pr.steps >= cfg.max_steps:
            break
    return losses


SOFT_TABLE_MAX_ELEMS = 1 << 26  # precompute all soft labels when N x C fits in 256 MB of float32


def _device_targets(x: torch.Tensor, t: Targets, centroids_deg: np.ndarray, train_idx: np.ndarray,
                    cfg: HeadConfig, dev: torch.device) -> dict:
    out = {"x": x.float().to(dev), "latlon": torch.as_tensor(t.latlon_deg, dtype=torch.float64, device=dev),
           "cells": torch.as_tensor(t.cells, dtype=torch.long, device=dev),
           "reg": torch.as_tensor(t.regression, device=dev), "koppen": torch.as_tensor(t.koppen, device=dev),
           "month": torch.as_tensor(t.month, device=dev),
           "centroids": torch.as_tensor(centroids_deg, dtype=torch.float64, device=dev)}
    if (
        cfg.smoothing and len(x) * len(centroids_deg) <= SOFT_TABLE_MAX_ELEMS
    ):  # labels are fixed: compute once
        soft = torch.zeros((len(x), len(centroids_deg)), device=dev)
        rows = torch.as_tensor(train_idx, device=dev)
        soft[rows] = smoothed_targets(out["latlon"][rows], out["centroids"], cfg.tau_km)
        out["soft"] = soft
    return out


def _step(net: nn.Module, opt: torch.optim.Optimizer, t: dict, idx: np.ndarray, cfg: HeadConfig) -> float:
    i = torch.as_tensor(idx, device=t["x"].device)
    out = net(t["x"][i])
    if "soft" in t:
        loss = soft_cross_entropy(out["cell"], t["soft"][i])
    else:
        loss = cell_loss(
            out["cell"], t["latlon"][i], t["cells"][i], t["centroids"], cfg.tau_km, cfg.smoothing
        )
    if cfg.multitask:
        loss = loss + aux_loss(out, t["reg"][i], t["koppen"][i], t["month"][i], tuple(cfg.aux_weights))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())
