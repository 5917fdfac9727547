"""The one device rule for inference, training and every CLI verb: a name -> a ``torch.device``, resolved once
at the edge. torch is imported on call, so this module is cheap to import."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_CUDA = re.compile(r"cuda(?::(\d+))?")


def check_device_name(name: str) -> str:
    """``name`` if it is one :func:`resolve_device` understands (whether or not this machine has it), else a
    ValueError listing the accepted names; for configs and CLI options, without importing torch."""
    if name in ("auto", "cpu", "mps") or _CUDA.fullmatch(name):
        return name
    raise ValueError(f"unknown device {name!r}: use one of {', '.join(DEVICE_NAMES)}")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when a CUDA GPU is available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` and
    ``mps`` as given, but a ValueError when that device is not available here, and for any other name.

    Under torchrun, :func:`train.distributed.init_distributed` then moves each rank to ``cuda:LOCAL_RANK``.
    """
    import torch

    text = str(name)  # a torch.device prints as its name
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    cuda = _CUDA.fullmatch(text)
    if cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but no CUDA GPU is available (use cpu or auto)")
        if cuda.group(1) is not None and int(cuda.group(1)) >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} "
                             "CUDA device(s), numbered from 0")
        return torch.device(text)
    if text == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' requested but Apple's Metal backend is not available "
                             "(use cpu or auto)")
        return torch.device("mps")
    raise ValueError(f"unknown device {name!r}: use {', '.join(DEVICE_NAMES)}")
