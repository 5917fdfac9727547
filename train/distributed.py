"""torchrun/DDP plumbing. The device is resolved once, at the CLI edge, by :func:`model.device.resolve_device`
(re-exported here); under torchrun :func:`init_distributed` then puts each rank on ``cuda:LOCAL_RANK``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group uses NCCL on CUDA and gloo on CPU; each rank works
on its share of the batches and rank 0 alone writes files. Outside torchrun everything degrades to one
process.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from model.device import resolve_device

__all__ = ["Dist", "init_distributed", "resolve_device", "shutdown"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def gather_rows(self, local: torch.Tensor, total: int) -> torch.Tensor:
        """Rows computed round-robin (rank r holds rows r, r+world, ...) -> all ``total`` rows in order, on
        CPU."""
        if not self.enabled:
            return local.cpu()
        per = (total + self.world - 1) // self.world
        pad = torch.zeros((per, *local.shape[1:]), dtype=local.dtype, device=local.device)
        pad[: len(local)] = local
        parts = [torch.empty_like(pad) for _ in range(self.world)]
        dist.all_gather(parts, pad)
        out = torch.stack(parts, dim=1).reshape(per * self.world, *local.shape[1:])  # row i*world + r
        return out[:total].cpu()

    def broadcast_object(self, obj):
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_distributed(device: torch.device | str) -> Dist:
    """Join the torchrun process group if launched by torchrun; otherwise a single-process ``Dist``.
    ``device``: a name or device for :func:`resolve_device`; under torchrun a CUDA device becomes
    ``cuda:LOCAL_RANK``."""
    device = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    log.info("distributed: rank %d of %d on %s", rank, world, device)
    return Dist(rank, world, device)


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
