"""Import torchvision beside the CPU build of torch (the pins are in pyproject.toml).

PyPI's torchvision 0.28 is a CUDA build whose C++ ops cannot load next to ``torch==2.13.0+cpu``; its
fake-kernel registrations then abort the import with ``operator torchvision::nms does not exist``. open_clip
and timm need torchvision only for pure-Python parts, so we declare the two op schemas, give ``nms`` a
pure-torch CPU kernel, and import again. Where the ops do load (matching CUDA/CPU builds) the first import
succeeds and this is a no-op. Import this module before open_clip, timm or torchvision.
"""
import sys

import torch

_lib = None


def _nms_cpu(dets, scores, iou_threshold: float):
    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.long)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(dets.size(0), dtype=torch.bool)
    keep = []
    for i in scores.argsort(descending=True).tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        suppressed |= inter / (areas[i] + areas - inter) > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


def import_torchvision():
    """Import torchvision; if its CUDA-built C++ ops can't load beside torch+cpu, declare the
    op schemas its fake-kernel registrations need and import again. No-op when ops load."""
    global _lib
    try:
        import torchvision
        return torchvision
    except RuntimeError as e:
        if "torchvision::" not in str(e) or "does not exist" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _lib = torch.library.Library("torchvision", "DEF")
    _lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _lib.impl("nms", _nms_cpu, "CPU")
    import torchvision
    return torchvision


import_torchvision()
