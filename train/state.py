"""Resumable training checkpoints, pickle-free.

A checkpoint folder holds ``model.safetensors`` (module state dicts, keys prefixed by group),
``optimizer.safetensors`` (optimiser tensors; its scalar state and param groups go to the manifest),
``config.toml`` and ``manifest.json`` (format "pigeon-checkpoint", version, progress counters, the identity of
the inputs - config-section hash, dataset fingerprint, geocell sha256 - and the sha256 + size of both weight
files; the shape of :mod:`model.formats.manifest`, which also reads older checkpoints). The manifest
is written last and atomically, so a folder without one is ignored; a folder whose identity differs from the
current run is refused rather than silently reused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from model.formats import manifest as mf
from model.formats.manifest import FormatError, atomic_write_text

SCHEMA_VERSION = 1


class StateMismatchError(ValueError):
    """A checkpoint exists but was made from different inputs (config, data or geocells)."""


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"scalars": scalars, "param_groups": sd["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    folder: Path,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer | None,
    config_toml: str,
    identity: dict[str, str],
    progress: dict[str, Any],
) -> None:
    """Write a checkpoint of ``modules`` (name -> module) + optimiser; ``progress`` holds epoch/step
    counters."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)
    weights = {f"{name}.{k}": v.detach().cpu().contiguous() for name, m in modules.items()
               for k, v in m.state_dict().items()}
    save_file(weights, str(folder / "model.safetensors"))
    files = ["model.safetensors"]
    opt_meta = None
    if optimizer is not None:
        tensors, opt_meta = _flatten_optimizer(optimizer)
        save_file(tensors, str(folder / "optimizer.safetensors"))
        files.append("optimizer.safetensors")
    atomic_write_text(folder / "config.toml", config_toml)
    mf.write_manifest(folder, "checkpoint", SCHEMA_VERSION,
                      {"identity": identity, "progress": progress, "optimizer": opt_meta}, files, indent=1)


def load_checkpoint(folder: Path, identity: dict[str, str]) -> dict[str, Any] | None:
    """The checkpoint in ``folder`` as {'weights', 'optimizer', 'progress'}; None if there is none.

    Raises ``StateMismatchError`` when it was made from other inputs and ValueError when files are corrupt.
    """
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = mf.read_manifest(folder, "checkpoint", SCHEMA_VERSION, required=("identity", "progress"))
    except FormatError as e:  # another version or shape: not resumable, like a checkpoint of other inputs
        raise StateMismatchError(f"{e}; pass --fresh") from None
    diff = sorted(
        k for k in set(identity) | set(manifest["identity"]) if identity.get(k) != manifest["identity"].get(k)
    )
    if diff:
        raise StateMismatchError(
            f"{folder} holds a checkpoint of a different run (differs in: {', '.join(diff)}); "
            "pass --fresh to discard it or choose another --out"
        )
    mf.verify_files(folder, manifest, hint="; corrupt checkpoint: pass --fresh")
    weights = load_file(str(folder / "model.safetensors"))
    opt = None
    if manifest.get("optimizer") is not None:
        opt = _unflatten_optimizer(load_file(str(folder / "optimizer.safetensors")), manifest["optimizer"])
    return {"weights": weights, "optimizer": opt, "progress": manifest["progress"]}


def module_weights(weights: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = name + "."
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
