"""Embedding extraction with a content-addressed cache.

Embeddings (N locations, V views, D) float32 are computed with ``model.network.token_mean`` and cached as
``CACHE/emb-<key>.safetensors``. The key is the sha256 of the dataset fingerprint (manifest, locations.csv and
every image file's sha256), the backbone's weight fingerprint, the preprocessing (size, mean, std), the views
and the embedding definition; the file's own metadata repeats the key and the id list hash and is checked on
load. A cache file is therefore used only when it provably matches, never merely because it exists.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.formats.dataset import Dataset
from model.formats.manifest import sha256_file
from model.network import autocast, normalize_uint8, state_fingerprint, token_mean, tower_width
from train.data import LocationTable, decode_views
from train.distributed import Dist

log = logging.getLogger(__name__)
EMBED_VERSION = "token-mean-v1"
_FINGERPRINTS: dict[str, str] = {}


def _dataset_files(ds: Dataset) -> list[str]:
    """manifest.json, locations.csv and every (location, view) image, as strings under the resolved root
    (pathlib objects and ``resolve`` per file cost seconds per 100,000 images)."""
    root = str(ds.root.resolve())
    images = f"{root}{os.sep}images{os.sep}"
    files = [f"{root}{os.sep}manifest.json", f"{root}{os.sep}locations.csv"]
    files += [f"{images}{loc.id}_{int(v)}.jpg" for loc in ds.locations for v in ds.views]
    return files


def dataset_fingerprint(ds: Dataset) -> str:
    """sha256 over manifest.json, locations.csv and every (location, view) image's name and sha256.

    Within a process the result is memoised under the (path, size, mtime) of every file, as git's index does,
    so a changed file is always re-hashed.
    """
    files = _dataset_files(ds)
    stat_key = hashlib.sha256()
    for p in files:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise FileNotFoundError(f"image {p} is missing (dataset {ds.root})") from None
        stat_key.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    key = stat_key.hexdigest()
    if key not in _FINGERPRINTS:
        h = hashlib.sha256()
        for p in files:
            h.update(f"{os.path.basename(p)}:{sha256_file(p)}\n".encode())
        _FINGERPRINTS[key] = h.hexdigest()
    return _FINGERPRINTS[key]


DECODE_CHUNK = 1024  # locations decoded at a time (uint8 at 64 px: 50 MB) while the previous chunk is embedded


@torch.no_grad()
def embed_locations(
    visual: nn.Module,
    ds: Dataset,
    table: LocationTable,
    indices: np.ndarray,
    views: list[int],
    size: int,
    mean,
    std,
    d: Dist,
    batch_size: int,
    threads: int = 2,
    progress: Callable[..., None] | None = None,
    decoded: tuple[np.ndarray, np.ndarray] | None = None,
) -> torch.Tensor:
    """Token-mean embeddings (len(indices), V, D) float32 on CPU; ranks share the work round-robin.

    Views are decoded by :func:`train.data.decode_views` (``threads`` threads, a chunk ahead of the forward
    pass) into uint8 and normalised by :func:`model.network.normalize_uint8`, the input inference computes.
    ``decoded``: (table rows (M,), uint8 pixels (M, V, size, size, 3)) already in memory (the encoder stage's),
    used for those rows instead of decoding them again."""
    visual.eval()
    mine = np.asarray(indices)[d.rank::d.world]
    per_batch = max(1, batch_size // max(1, len(views)))  # batch_size counts images, a location has V
    known = {} if decoded is None else {int(r): k for k, r in enumerate(decoded[0])}

    def pixels(rows: np.ndarray) -> np.ndarray:
        have = np.array([int(r) in known for r in rows], dtype=bool)
        if not have.any():
            return decode_views(ds, table, rows, views, size, threads)
        out = np.empty((len(rows), len(views), size, size, 3), dtype=np.uint8)
        out[have] = decoded[1][[known[int(r)] for r in rows[have]]]
        if not have.all():
            out[~have] = decode_views(ds, table, rows[~have], views, size, threads)
        return out

    out, done = [], 0
    chunks = [mine[s:s + DECODE_CHUNK] for s in range(0, len(mine), DECODE_CHUNK)]
    with ThreadPoolExecutor(1) as ahead:
        nxt = ahead.submit(pixels, chunks[0]) if chunks else None
        for c in range(len(chunks)):
            px = nxt.result()
            nxt = ahead.submit(pixels, chunks[c + 1]) if c + 1 < len(chunks) else None
            for s in range(0, len(px), per_batch):
                stacks = normalize_uint8(torch.from_numpy(px[s:s + per_batch]), mean, std)
                b, v = stacks.shape[:2]
                with autocast(d.device):
                    emb = token_mean(visual, stacks.flatten(0, 1).to(d.device, non_blocking=True))
                out.append(emb.float().reshape(b, v, -1).cpu())
                done += b
                if progress:
                    progress("embed", done * d.world, len(indices))
    width = tower_width(visual)
    local = torch.cat(out) if out else torch.zeros((0, len(views), width))
    return d.gather_rows(local.to(d.device), len(indices))


VIEWS_VERSION = "resize-view-v1"  # train.data.decode_views' rule (model.views.resize_view); bump when it changes


def views_cache_path(ds: Dataset, table: LocationTable, views: list[int], size: int, cache_dir: Path) -> Path:
    """``CACHE/views-<key>.npy``: the uint8 views of every location of ``ds`` at ``size`` px. The key hashes the
    dataset fingerprint (every image's sha256), the location ids in table order, the views, the size and the
    resize rule's version."""
    payload = {"dataset": dataset_fingerprint(ds), "ids": ids_hash(table.ids), "views": [int(v) for v in views],
               "size": int(size), "version": VIEWS_VERSION}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return Path(cache_dir) / f"views-{key[:24]}.npy"


def cached_views(ds: Dataset, table: LocationTable, views: list[int], size: int, cache_dir: Path | None,
                 threads: int = 2, create: bool = True, mmap: bool = False) -> np.ndarray | None:
    """uint8 pixels (N, V, size, size, 3) of every location (table order), as :func:`train.data.decode_views`
    gives them, from ``CACHE/views-<key>.npy`` when it is there and whole; otherwise decoded and written there
    (``create``) or None (not ``create``). The encoder stage decodes every view once per dataset and size
    (1.9-2.3 GB for 40,000-48,000 locations at 64 px), so the embedding passes after it, here and in later
    commands (``pigeon eval --ablation``'s untrained tower), read pixels instead of decoding 190,000 JPEGs
    again. ``mmap``: map the file read-only instead of reading it into memory."""
    shape = (len(table), len(views), int(size), int(size), 3)
    path = views_cache_path(ds, table, views, size, cache_dir) if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None)
            if arr.shape == shape and arr.dtype == np.uint8:
                log.info("views: pixels from %s", path)
                return arr
            log.warning("views cache %s holds %s %s, not %s uint8; decoding again", path, arr.shape, arr.dtype,
                        shape)
        except (OSError, ValueError) as e:
            log.warning("views cache %s unreadable (%s); decoding again", path, e)
    if not create:
        return None
    t0 = time.perf_counter()
    arr = decode_views(ds, table, np.arange(len(table)), list(views), size, threads)
    log.info("views: decoded %d locations x %d views at %d px (%.0f MB) in %.1f s%s", len(arr), len(views), size,
             arr.nbytes / 2**20, time.perf_counter() - t0, f", cached as {path}" if path is not None else "")
    if path is not None:
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npy")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(tmp, arr)
            os.replace(tmp, path)
        except OSError as e:  # a full or read-only cache is not an error: the pixels are in memory
            log.warning("could not write views cache %s: %s", path, e)
            tmp.unlink(missing_ok=True)
    return arr


def cache_key(ds: Dataset, visual: nn.Module, backbone: str, views: list[int], size: int, mean, std) -> str:
    payload = {"dataset": dataset_fingerprint(ds), "weights": state_fingerprint(visual), "backbone": backbone,
               "views": list(views), "size": int(size), "mean": [float(x) for x in mean],
               "std": [float(x) for x in std], "version": EMBED_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def ids_hash(ids: list[str]) -> str:
    """sha256 of a list of location ids (their order counts): ties a cache file to the rows it holds."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _read_cache(path: Path, key: str, ids: list[str], shape: tuple[int, int]) -> torch.Tensor | None:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            emb = f.get_tensor("embeddings")
    except (SafetensorError, OSError, KeyError) as e:
        log.warning("embedding cache %s unreadable (%s); recomputing", path, e)
        return None
    if meta.get("key") != key or meta.get("ids_sha256") != ids_hash(ids) or tuple(emb.shape[:2]) != shape:
        log.warning("embedding cache %s does not match this dataset/backbone; recomputing", path)
        return None
    return emb


def cached_embeddings(visual: nn.Module, backbone: str, ds: Dataset, table: LocationTable, views: list[int],
                      size: int, mean, std, cache_dir: Path, d: Dist, batch_size: int, threads: int = 2,
                      progress: Callable[..., None] | None = None,
                      decoded: tuple[np.ndarray, np.ndarray] | None = None) -> torch.Tensor:
    """Embeddings (N, V, D) of every location of ``ds`` (CSV order), from the cache when it provably
    matches; ``decoded``: see :func:`embed_locations`."""
    from safetensors.torch import save_file

    key = cache_key(ds, visual, backbone, views, size, mean, std)
    path = Path(cache_dir) / f"emb-{key[:24]}.safetensors"
    emb = _read_cache(path, key, table.ids, (len(table), len(views))) if d.main else None
    if d.broadcast_object(emb is not None):
        if emb is None:
            emb = _read_cache(path, key, table.ids, (len(table), len(views)))
        log.info("embeddings: cache hit %s", path)
        return emb
    if decoded is None:  # the views the encoder stage decoded for this dataset and size, if cached
        px = cached_views(ds, table, views, size, cache_dir, create=False, mmap=True)
        if px is not None:
            decoded = (np.arange(len(table)), px)
    emb = embed_locations(visual, ds, table, np.arange(len(table)), views, size, mean, std, d, batch_size,
                          threads, progress, decoded)
    if d.main:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        save_file({"embeddings": emb.contiguous()}, str(tmp),
                  metadata={"key": key, "ids_sha256": ids_hash(table.ids), "backbone": backbone,
                            "views": json.dumps(list(views)), "version": EMBED_VERSION})
        os.replace(tmp, path)
    d.barrier()
    return emb
