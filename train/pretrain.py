"""Multi-task contrastive pretraining (docs/method.md §2.4): both CLIP towers on (view, synthetic geo-caption)
pairs.

open_clip ``ClipLoss`` with the learnable logit scale; under DDP the features of all ranks are gathered with
gradients (``local_loss`` + ``gather_with_grad``), so the contrastive batch is ``pretrain.batch_size``
whatever the number of devices (PIGEON's loss saw only the 32-sample device batch: docs/method.md §2.4).
AdamW with open_clip's no-decay rule (gains, biases, logit scale), HF-style linear warm-up then linear decay,
gradient clipping, and a resumable checkpoint every ``save_every_steps`` optimiser steps.
"""
from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from model.formats.dataset import Dataset
from model.network import autocast, build_clip, clip_loss, tower_image_size
from train.captions import CaptionInfo
from train.config import TrainConfig
from train.data import CaptionedViews, LocationTable, epoch_samples
from train.distributed import Dist
from train.state import load_checkpoint, module_weights, save_checkpoint

log = logging.getLogger(__name__)
# open_clip's gather_with_grad uses torch.distributed.nn.all_gather, deprecated but correct (gradients flow
# back)
warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_gather is deprecated")
Progress = Callable[..., None]


def lr_at(step: int, total: int, base_lr: float, warmup_ratio: float) -> float:
    """Linear warm-up over ceil(ratio * total) steps, then linear decay to 0 at ``total`` (HF 'linear')."""
    warm = math.ceil(warmup_ratio * total)
    if step < warm:
        return base_lr * (step + 1) / warm
    return base_lr * max(0.0, (total - step) / max(1, total - warm))


def make_optimizer(model: nn.Module, cfg) -> torch.optim.AdamW:
    no_decay = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if not no_decay(n, p)], "weight_decay": cfg.weight_decay},
              {"params": [p for n, p in named if no_decay(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


class _Plan:
    """Step arithmetic of one pretraining run."""

    def __init__(self, cfg: TrainConfig, n_samples: int, world: int):
        p = cfg.pretrain
        if p.batch_size % world:
            raise ValueError(f"pretrain.batch_size {p.batch_size} is not divisible by the {world} processes")
        self.batch, self.accum, self.per_rank = p.batch_size, p.grad_accum, p.batch_size // world
        self.steps_per_epoch = n_samples // (p.batch_size * p.grad_accum)
        if self.steps_per_epoch == 0 and p.epochs > 0:
            raise ValueError(
                f"pretraining has {n_samples} samples per epoch, fewer than one optimiser step "
                f"(batch_size {p.batch_size} x grad_accum {p.grad_accum}); lower pretrain.batch_size"
            )
        self.total = p.epochs * self.steps_per_epoch
        if p.max_steps:
            self.total = min(self.total, p.max_steps)

    def rank_batches(self, step: int, rank: int) -> list[list[int]]:
        """Sample positions (in the epoch order) of this rank's micro-batches for optimiser step ``step``."""
        out = []
        for micro in range(self.accum):
            start = (step * self.accum + micro) * self.batch + rank * self.per_rank
            out.append(list(range(start, start + self.per_rank)))
        return out


def pretrain(ds: Dataset, table: LocationTable, cfg: TrainConfig, d: Dist, state_dir: Path, config_toml: str,
             identity: dict[str, str], progress: Progress | None = None) -> nn.Module:
    """Contrastively fine-tune ``cfg.backbone`` on the train split; returns the (unwrapped) open_clip
    model."""
    p = cfg.pretrain
    model, tokenizer = build_clip(cfg.backbone.name, cfg.backbone.pretrained, cfg.backbone.image_size or None,
                                  seed=cfg.seed)
    model.to(d.device)
    size, mean, std = (
        tower_image_size(model.visual),
        model.visual.preprocess_cfg["mean"],
        model.visual.preprocess_cfg["std"],
    )
    train_idx = table.indices("train")
    n_views = len(ds.views)
    plan = _Plan(cfg, len(epoch_samples(train_idx, n_views, p.views, cfg.seed, 0)), d.world)
    opt = make_optimizer(model, p)
    ck = load_checkpoint(state_dir, identity)
    step = 0
    if ck is not None:
        model.load_state_dict(module_weights(ck["weights"], "clip"))
        opt.load_state_dict(ck["optimizer"])
        step = int(ck["progress"]["step"])
        log.info("pretraining: resuming at step %d of %d from %s", step, plan.total, state_dir)
    if step >= plan.total:
        return model.eval()
    infos = [CaptionInfo.from_aux(a) for a in table.aux]
    net = model
    if d.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )
    loss_fn = clip_loss(rank=d.rank, world_size=d.world, distributed=d.enabled)
    model.train()
    while step < plan.total:
        epoch, first = divmod(step, plan.steps_per_epoch)
        last = min(plan.steps_per_epoch, plan.total - epoch * plan.steps_per_epoch)
        samples = epoch_samples(train_idx, n_views, p.views, cfg.seed, epoch)
        data = CaptionedViews(
            ds, table, samples, infos, size, mean, std, tokenizer, cfg.seed, epoch, p.aux_captions
        )
        batches = [b for s in range(first, last) for b in plan.rank_batches(s, d.rank)]
        micro = iter(
            torch.utils.data.DataLoader(data, batch_sampler=batches, num_workers=cfg.runtime.workers)
        )
        for _ in range(first, last):
            loss = _train_step(
                net, model, [next(micro) for _ in range(plan.accum)], plan, step, d, loss_fn, opt, p
            )
            step += 1
            if d.main and (
                step % p.save_every_steps == 0 or step % plan.steps_per_epoch == 0 or step == plan.total
            ):
                save_checkpoint(
                    state_dir,
                    {"clip": model},
                    opt,
                    config_toml,
                    identity,
                    {"step": step, "epoch": epoch, "total": plan.total, "done": step == plan.total},
                )
            if progress:
                progress("pretrain", step, plan.total, loss=loss, epoch=epoch)
    d.barrier()
    return model.eval()


def _train_step(net, model, micro_batches: list, plan: _Plan, step: int, d: Dist, loss_fn, opt, p) -> float:
    """One optimiser step over ``grad_accum`` micro-batches; returns the mean contrastive loss on this
    rank."""
    for g in opt.param_groups:
        g["lr"] = lr_at(step, plan.total, p.lr, p.warmup_ratio)
    total = 0.0
    for i, (images, tokens) in enumerate(micro_batches):
        sync = net.no_sync() if (d.enabled and i < len(micro_batches) - 1) else contextlib.nullcontext()
        with sync, autocast(d.device):
            out = net(images.to(d.device, non_blocking=True), tokens.to(d.device, non_blocking=True))
            loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"]) / plan.accum
        loss.backward()
        total += float(loss.detach())
    if p.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))
    return total
