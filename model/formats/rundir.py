"""The run directory: the contract between training (writer) and inference (reader).

Layout::

    RUN/config.toml         the resolved training config (TOML)
    RUN/model.safetensors   visual tower (``visual.*``) + geocell/aux heads (``head.*``); no text tower
    RUN/geocells/           copy of the geocell folder the head was trained against (row order = class id)
    RUN/manifest.json       schema_version, backbone, embed_dim, image_size, mean/std, num_cells, aux heads,
                            sha256 + size of every file above, training-data fingerprint, metrics

``manifest.json`` is written last (atomically), so a run without one is incomplete. Readers check every listed
file's size and sha256 before trusting it; :func:`model.network.load_run` also checks tensor shapes.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from model.formats.dataset import sha256_file

FORMAT = "pigeon-run"
SCHEMA_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.toml"
MANIFEST_FILE = "manifest.json"
GEOCELLS_DIR = "geocells"
REQUIRED_KEYS = (
    "format",
    "schema_version",
    "backbone",
    "embed_dim",
    "image_size",
    "mean",
    "std",
    "num_cells",
    "aux",
    "files",
)


class RunError(ValueError):
    """A run directory is incomplete, corrupt, or inconsistent with itself (hashes, shapes, cell count)."""


def file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_run(
    run_dir: Path, tensors: dict, config_toml: str, geocells_dir: Path, manifest: dict[str, Any]
) -> dict:
    """Write a complete run directory; ``tensors`` is a flat name -> torch.Tensor dict (``visual.*``,
    ``head.*``).

    ``manifest`` carries the model description (backbone, embed_dim, ...); ``files`` and the format keys are
    added here. Returns the manifest written.
    """
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MANIFEST_FILE).unlink(missing_ok=True)  # a half-rewritten run must not look complete
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(run_dir / MODEL_FILE),
              metadata={"format": FORMAT, "schema_version": str(SCHEMA_VERSION)})
    atomic_write_text(run_dir / CONFIG_FILE, config_toml)
    dst = run_dir / GEOCELLS_DIR
    if Path(geocells_dir).resolve() != dst.resolve():
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(geocells_dir, dst)
    files = {MODEL_FILE: file_entry(run_dir / MODEL_FILE), CONFIG_FILE: file_entry(run_dir / CONFIG_FILE)}
    for p in sorted(dst.rglob("*")):
        if p.is_file():
            files[p.relative_to(run_dir).as_posix()] = file_entry(p)
    out = {"format": FORMAT, "schema_version": SCHEMA_VERSION, **manifest, "files": files}
    atomic_write_text(run_dir / MANIFEST_FILE, json.dumps(out, indent=2) + "\n")
    return out


def update_manifest(run_dir: Path, **fields: Any) -> dict:
    """Merge top-level ``fields`` (e.g. metrics) into an existing manifest; file hashes are untouched."""
    manifest = read_manifest(run_dir)
    manifest.update(fields)
    atomic_write_text(Path(run_dir) / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(run_dir: Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {run_dir} is not a finished pigeon run (training incomplete?)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RunError(f"{path}: 'format' must be {FORMAT!r}")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise RunError(f"{path}: schema_version {manifest.get('schema_version')!r} is not supported "
                       f"(this pigeon reads {SCHEMA_VERSION}); retrain or convert the run")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise RunError(f"{path}: missing key(s) {', '.join(missing)}")
    return manifest


def verify_files(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Check that every file the manifest lists exists with the recorded size and sha256."""
    run_dir = Path(run_dir)
    for required in (MODEL_FILE, CONFIG_FILE):
        if required not in manifest["files"]:
            raise RunError(f"{run_dir / MANIFEST_FILE}: 'files' does not list {required}")
    if not any(name.startswith(GEOCELLS_DIR + "/") for name in manifest["files"]):
        raise RunError(f"{run_dir / MANIFEST_FILE}: 'files' lists no {GEOCELLS_DIR}/ files")
    for name, entry in manifest["files"].items():
        path = run_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"run {run_dir} is missing {name}")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise RunError(f"{path}: {size} bytes but the manifest records {entry.get('bytes')} "
                           f"({'truncated' if size < (entry.get('bytes') or 0) else 'modified'} file)")
        if sha256_file(path) != entry.get("sha256"):
            raise RunError(f"{path}: sha256 does not match the manifest (file corrupt or modified)")
