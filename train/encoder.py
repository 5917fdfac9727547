"""Supervised multi-task training of the vision tower itself: the stage that makes a from-scratch encoder learn.

PIGEON freezes a CLIP tower that was pretrained on 400 M pairs before its own contrastive stage
(docs/method.md §2.4-2.7). Without pretrained weights the frozen tower is the bottleneck: the head can only
read what random or weakly pretrained features carry. This stage trains the tower end to end on pixels with
the targets the head uses, before embeddings are cached and the head is trained as in PIGEON:

* geocells with haversine-smoothed labels (tau = ``head.tau_km``), the auxiliary targets of §2.6 (regression,
  Köppen, month) and two more classification targets the synthetic world labels: country and driving side;
* the views of a location embedded by the shared tower, fused by :func:`model.views.fuse_views` with
  ``head.fusion`` (concatenated in heading order tells the model which view faces along the road);
* every image decoded once into a uint8 array held in memory (``train.embed.cached_views``; the pipeline keeps it
  in the cache folder, so later commands reuse it), at the tower's input size
  through :func:`model.views.resize_view`, normalised per batch with :func:`model.network.normalize_uint8`:
  the same pixels inference computes, and no loader process competing with the two torch threads;
* augmentation by random translation only (a horizontal flip would swap the driving side);
* AdamW with warm-up and linear decay, optionally an exponential moving average of the weights
  (``encoder.ema_decay``, :class:`WeightAverage`) as the model validated and kept; the best epoch on validation
  geocell top-1 kept, a resumable checkpoint after every epoch (``RUN/state/encoder``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from model.formats.dataset import Dataset
from model.network import AuxSpec, GeoHead, normalize_uint8, token_mean, tower_image_size, tower_width
from model.views import fuse_views, fused_dim
from train.data import LocationTable
from train.embed import cached_views
from train.head import aux_loss, masked_cross_entropy, smoothed_targets, soft_cross_entropy
from train.pretrain import lr_at, make_optimizer
from train.state import load_checkpoint, module_weights, save_checkpoint
from train.targets import Targets

log = logging.getLogger(__name__)


def label_ids(values: np.ndarray, train_idx: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """String labels (N,) -> class ids (N,) over the classes seen in the train split; unknown / unseen -> -1."""
    classes = sorted({v for v in values[train_idx] if v})
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup.get(v, -1) for v in values], dtype=np.int64), classes


class EncoderNet(nn.Module):
    """The tower, the view fusion and the training heads: geocells + aux (a ``GeoHead``), country, side."""

    def __init__(self, visual: nn.Module, n_views: int, fusion: str, num_cells: int, aux: AuxSpec,
                 n_countries: int, dropout: float):
        super().__init__()
        self.visual, self.fusion = visual, fusion
        dim = fused_dim(tower_width(visual), fusion, n_views)
        self.drop = nn.Dropout(dropout)
        self.head = GeoHead(dim, num_cells, aux)
        self.country = nn.Linear(dim, max(1, n_countries))
        self.side = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, V, 3, S, S) normalised -> head outputs + country and driving-side logits."""
        b, v = x.shape[:2]
        emb = fuse_views(token_mean(self.visual, x.flatten(0, 1)).reshape(b, v, -1), self.fusion)
        emb = self.drop(emb)
        return {**self.head(emb), "country": self.country(emb), "side": self.side(emb)}

    def to_layout(self, channels_last: bool) -> EncoderNet:
        """Put the weights (in place) in channels-last or the default layout; the inputs follow in
        ``model.network.token_mean`` on CPU, and a convolution with channels-last weights runs channels-last."""
        return self.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@dataclass
class EncoderResult:
    visual: nn.Module
    head: GeoHead  # the geocell + auxiliary head trained with the tower (best epoch), for head.source = "encoder"
    best_epoch: int
    best_val_acc: float
    history: list[dict[str, Any]]
    # (table rows, uint8 pixels) of every location's views, which this stage held, so the embedding pass after it
    # reuses them instead of decoding every image again (train.embed.embed_locations' ``decoded``)
    decoded: tuple[np.ndarray, np.ndarray] | None = None


def _shifted(batch: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Random translation by up to ``shift`` px per image (edge-replicated), same shape (B, V, S, S, 3)."""
    if shift <= 0:
        return batch
    s = batch.shape[2]
    padded = np.pad(batch, ((0, 0), (0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
    dy, dx = rng.integers(0, 2 * shift + 1, size=(2, batch.shape[0]))
    return np.stack([padded[i, :, dy[i]:dy[i] + s, dx[i]:dx[i] + s] for i in range(batch.shape[0])])


class _Data:
    """Everything one epoch reads, as tensors: pixels, soft and hard labels."""

    def __init__(self, pixels: np.ndarray, rows: np.ndarray, targets: Targets, soft: torch.Tensor,
                 country: np.ndarray, side: np.ndarray, mean, std):
        self.pixels, self.rows = pixels, rows  # pixels of every table row; this split's rows
        self.soft = soft
        self.cells = torch.as_tensor(targets.cells[rows])
        self.reg = torch.as_tensor(targets.regression[rows])
        self.koppen = torch.as_tensor(targets.koppen[rows])
        self.month = torch.as_tensor(targets.month[rows])
        self.country = torch.as_tensor(country[rows])
        self.side = torch.as_tensor(side[rows])
        self.mean, self.std = mean, std

    def images(self, k: np.ndarray, shift: int = 0, rng: np.random.Generator | None = None) -> torch.Tensor:
        px = self.pixels[self.rows[k]]
        px = px if shift <= 0 else _shifted(px, shift, rng)
        return normalize_uint8(torch.from_numpy(np.ascontiguousarray(px)), self.mean, self.std)


def _loss(out: dict, data: _Data, k: torch.Tensor, cfg, aux_weights) -> torch.Tensor:
    loss = soft_cross_entropy(out["cell"], data.soft[k])
    for key, w in (("country", cfg.country_weight), ("side", cfg.driving_side_weight)):
        if w > 0:
            loss = loss + w * masked_cross_entropy(out[key], getattr(data, key)[k])
    return loss + aux_loss(out, data.reg[k], data.koppen[k], data.month[k], aux_weights)


class WeightAverage:
    """Exponential moving average of a module's parameters and floating-point buffers (BatchNorm statistics),
    updated after every optimiser step; integer buffers are copied. Decay min(decay, (1 + t) / (10 + t)) at
    step t, so the first steps are not dominated by the random initialisation."""

    def __init__(self, net: nn.Module, decay: float):
        import copy

        self.decay = decay
        self.net = copy.deepcopy(net).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        mine = list(self.net.parameters()) + [b for b in self.net.buffers() if b.is_floating_point()]
        live = list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]
        torch._foreach_lerp_(mine, live, 1.0 - d)
        for a, b in zip(self.net.buffers(), net.buffers()):
            if not a.is_floating_point():
                a.copy_(b)


def _epoch(net: EncoderNet, opt: torch.optim.Optimizer, tr: _Data, rng: np.random.Generator, step: int,
           total: int, steps_per_epoch: int, cfg, aux_weights, progress,
           ema: WeightAverage | None = None) -> tuple[list[float], int]:
    """One pass over the train rows in ``rng``'s order (stopping at ``total`` steps) -> (losses, step)."""
    order = rng.permutation(len(tr.rows))
    losses = []
    for b in range(steps_per_epoch):
        if step >= total:
            break
        k = np.sort(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, cfg.lr, cfg.warmup_ratio)
        out = net(tr.images(k, cfg.shift_px, rng))
        loss = _loss(out, tr, torch.as_tensor(k), cfg, aux_weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if ema is not None:
            ema.update(net, step)
        losses.append(float(loss.detach()))
        step += 1
        if progress:
            progress("encoder", step, total, loss=losses[-1])
    return losses, step


@torch.no_grad()
def _evaluate(net: EncoderNet, data: _Data, batch: int) -> dict[str, float]:
    net.eval()
    cell_hits = country_hits = side_hits = 0
    for s in range(0, len(data.rows), batch):
        k = np.arange(s, min(s + batch, len(data.rows)))
        out = net(data.images(k))
        cell_hits += int((out["cell"].argmax(1) == data.cells[k]).sum())
        country_hits += int((out["country"].argmax(1) == data.country[k]).sum())
        side_hits += int((out["side"].argmax(1) == data.side[k]).sum())
    n = max(1, len(data.rows))
    return {"val_cell_top1": cell_hits / n, "val_country": country_hits / n, "val_side": side_hits / n}


def train_encoder(visual: nn.Module, ds: Dataset, table: LocationTable, targets: Targets,
                  centroids_deg: np.ndarray, cfg, head_cfg, seed: int, mean, std, state_dir: Path | None,
                  config_toml: str, identity: dict[str, str], progress: Callable | None = None,
                  pixels: np.ndarray | None = None) -> EncoderResult:
    """Train ``visual`` in place on the dataset's train split (validation: val split) and return it with the
    best epoch's weights. ``cfg``: :class:`train.config.EncoderConfig`; ``head_cfg`` gives tau_km, the fusion and
    the auxiliary weights. ``pixels``: uint8 (len(table), V, size, size, 3) of every location, already decoded
    (``train.embed.cached_views``); without them they are decoded here (and not cached)."""
    train_idx, val_idx = table.indices("train"), table.indices("val")
    size, views = tower_image_size(visual), list(ds.views)
    if pixels is None:
        pixels = cached_views(ds, table, views, size, None, cfg.decode_threads)
    want = (len(table), len(views), size, size, 3)
    if pixels.shape != want or pixels.dtype != np.uint8:
        raise ValueError(f"encoder: pixels are {pixels.shape} {pixels.dtype}, expected {want} uint8")
    country, countries = label_ids(table.column("country"), train_idx)
    side, _ = label_ids(table.column("driving_side"), train_idx)  # ["left", "right"]
    cent = torch.as_tensor(centroids_deg, dtype=torch.float64)
    soft = smoothed_targets(torch.as_tensor(table.latlon_deg[train_idx]), cent, head_cfg.tau_km)
    tr = _Data(pixels, train_idx, targets, soft, country, side, mean, std)
    va = _Data(pixels, val_idx, targets, torch.zeros(0), country, side, mean, std)
    aux = targets.aux if head_cfg.multitask else AuxSpec()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = EncoderNet(visual, len(views), head_cfg.fusion, len(centroids_deg), aux, len(countries), cfg.dropout)
    net.to_layout(cfg.channels_last)
    opt = make_optimizer(net, cfg)
    ema = WeightAverage(net, cfg.ema_decay) if cfg.ema_decay > 0 else None
    judged = ema.net if ema else net  # the model validated, kept as the best epoch and exported
    steps_per_epoch = max(1, len(train_idx) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    start_epoch, history, best = 0, [], {"epoch": -1, "acc": -1.0, "state": None}
    ck = load_checkpoint(state_dir, identity) if state_dir else None
    if ck is not None:
        net.load_state_dict(module_weights(ck["weights"], "net"))
        if ema is not None:
            ema.net.load_state_dict(module_weights(ck["weights"], "ema"))
        best_state = module_weights(ck["weights"], "best")
        opt.load_state_dict(ck["optimizer"])
        start_epoch, history = ck["progress"]["epoch"], ck["progress"]["history"]
        best = {"epoch": ck["progress"]["best_epoch"], "acc": ck["progress"]["best_acc"], "state": best_state}
        log.info("encoder: resuming after epoch %d", start_epoch)
    aux_weights = tuple(head_cfg.aux_weights)
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        if step >= total:
            break
        net.train()
        rng = np.random.default_rng([seed, epoch])
        t_ep = time.perf_counter()
        with torch.random.fork_rng(devices=[]):  # dropout draws from the seed and the epoch, so a resumed
            torch.manual_seed(seed * 10_007 + epoch)  # run and a straight one see the same ones
            losses, step = _epoch(net, opt, tr, rng, step, total, steps_per_epoch, cfg, aux_weights, progress,
                                  ema)
        seconds = time.perf_counter() - t_ep
        val = _evaluate(judged, va, 4 * cfg.batch_size) if len(val_idx) else {"val_cell_top1": 0.0}
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else float("nan"),
               "images_per_s": len(losses) * cfg.batch_size * len(views) / max(seconds, 1e-9),
               "minutes": seconds / 60, **val}
        history.append(row)
        log.info("encoder epoch %d/%d: loss %.3f, %.0f images/s, %.1f min, val cell top-1 %.3f, country %.3f, "
                 "side %.3f", epoch + 1, cfg.epochs, row["loss"], row["images_per_s"], row["minutes"],
                 val.get("val_cell_top1", 0), val.get("val_country", 0), val.get("val_side", 0))
        if val["val_cell_top1"] > best["acc"]:
            best = {"epoch": epoch + 1, "acc": val["val_cell_top1"],
                    "state": {k: v.detach().clone() for k, v in judged.state_dict().items()}}
        if state_dir:
            save_checkpoint(state_dir, {"net": net, "best": _StateHolder(best["state"]),
                                        **({"ema": ema.net} if ema else {})}, opt, config_toml,
                            identity, {"epoch": epoch + 1, "history": history, "best_epoch": best["epoch"],
                                       "best_acc": best["acc"]})
    if best["state"] is not None:
        net.load_state_dict(best["state"])
    elif ema is not None:
        net.load_state_dict(ema.net.state_dict())
    net.to_layout(False)  # the exported tower and everything downstream use the default layout
    return EncoderResult(net.visual.eval(), net.head.eval(), best["epoch"], best["acc"], history,
                         (np.arange(len(table)), pixels))


class _StateHolder(nn.Module):
    """Lets a plain state dict (the best epoch's weights) ride in a checkpoint as a module."""

    def __init__(self, state: dict[str, torch.Tensor] | None):
        super().__init__()
        self._state = state or {}

    def state_dict(self, *args, **kwargs):  # noqa: D102
        return dict(self._state)
