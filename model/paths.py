"""Where things live by default: the checkout, its configs, the offline data and the caches.

Every default path of the project is computed here, so moving a folder means editing one module. Library code
takes paths as arguments; these are only the defaults the CLI and the configs fall back to.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"


def data_dir() -> Path:
    """Root of the offline data: ``$PIGEON_DATA`` if set, else ``<repo>/data`` (geodata in ``geodata/``)."""
    env = os.environ.get("PIGEON_DATA")
    return Path(env).expanduser() if env else REPO_ROOT / "data"


def cache_dir(configured: str | Path | None = None) -> Path:
    """The embedding cache: ``configured`` when given (a ``--cache`` option or ``runtime.cache_dir``), else
    ``$PIGEON_CACHE`` if set, else ``data_dir() / "cache"`` (git-ignored). The default is never a run folder, so
    evaluating a committed checkpoint leaves it untouched.

    One folder serves every run and dataset: cache files are content-addressed (``train.embed.cache_key``
    hashes the dataset fingerprint - every image's sha256 -, the backbone's weight fingerprint, preprocessing
    and views, and the file's metadata is checked on load), and written through a temporary file and an
    atomic rename, so runs never read each other's embeddings by mistake."""
    if configured:
        return Path(configured)
    env = os.environ.get("PIGEON_CACHE")
    return Path(env).expanduser() if env else data_dir() / "cache"


def project_path(p: str | Path) -> Path:
    """A relative path from a config file, resolved against the checkout (absolute paths are kept)."""
    p = Path(p).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p
