"""The run directory: the contract between training (writer) and inference (reader).

Layout::

    RUN/config.toml         the resolved training config (TOML)
    RUN/model.safetensors   visual tower (``visual.*``) + geocell/aux heads (``head.*``); no text tower
    RUN/geocells/           copy of the geocell folder the head was trained against (row order = class id)
    RUN/manifest.json       format "pigeon-run", version, backbone, embed_dim, image_size, mean/std,
                            num_cells, aux heads, sha256 + size of every file above, training-data
                            fingerprint, metrics

``manifest.json`` (the shape of :mod:`model.formats.manifest`; older runs wrote ``schema_version``) is
written last (atomically), so a run without one is incomplete. Readers check every listed file's size and
sha256 before trusting it; :func:`model.network.load_run` also checks tensor shapes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from model.formats import manifest as mf
from model.formats.manifest import MANIFEST_FILE, FormatError, atomic_write_text, file_entry  # noqa: F401

FORMAT = "pigeon-run"
SCHEMA_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.toml"
GEOCELLS_DIR = "geocells"
REQUIRED_KEYS = (
    "format",
    "version",
    "backbone",
    "embed_dim",
    "image_size",
    "mean",
    "std",
    "num_cells",
    "aux",
    "files",
)


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
    files = [MODEL_FILE, CONFIG_FILE] + [p.relative_to(run_dir).as_posix() for p in sorted(dst.rglob("*"))
                                         if p.is_file()]
    return mf.write_manifest(run_dir, "run", SCHEMA_VERSION, manifest, files)


def update_manifest(run_dir: Path, **fields: Any) -> dict:
    """Merge top-level ``fields`` (e.g. metrics) into an existing manifest; file hashes are untouched."""
    manifest = read_manifest(run_dir)
    manifest.update(fields)
    atomic_write_text(Path(run_dir) / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest, checked (format, version, required keys) and in the current shape."""
    return mf.read_manifest(run_dir, "run", SCHEMA_VERSION, required=REQUIRED_KEYS,
                            hint=" (training incomplete?)")


def verify_files(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Check that every file the manifest lists exists with the recorded size and sha256."""
    run_dir = Path(run_dir)
    for required in (MODEL_FILE, CONFIG_FILE):
        if required not in manifest["files"]:
            raise FormatError(f"{run_dir / MANIFEST_FILE}: 'files' does not list {required}")
    if not any(name.startswith(GEOCELLS_DIR + "/") for name in manifest["files"]):
        raise FormatError(f"{run_dir / MANIFEST_FILE}: 'files' lists no {GEOCELLS_DIR}/ files")
    mf.verify_files(run_dir, manifest)
