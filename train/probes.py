"""Sanity baselines for evaluation: does the run know more than its raw pixels?

* ``raw_pixels`` baseline: every view of a location downscaled to 8x8 RGB (values / 255), the views
  concatenated in heading order (4 views -> 768 features), standardised with train-split statistics; a linear
  softmax classifier over the run's geocells, trained on the dataset's train split with the head's targets
  (haversine smoothed or one-hot, as the run's ``[head]`` config says), guessed from with the run's guess
  rules (centroid of the most probable cell; expected-score guess).
* linear probes (multinomial logistic regression on standardised features, train split -> evaluated split) of
  driving side, sign script, country and Köppen main class, on the run's fused embedding and on the pixels.

A run whose geolocation is no better than the pixel baseline, or whose embedding probes sit at the majority
rate, learned nothing; :func:`warnings_for` words that for the report and the CLI.

Everything is deterministic: the classifiers start from zero weights and run a fixed number of full-batch
L-BFGS iterations in float32 on CPU (about 6 s for the demo world's 8,676 train locations x 768 pixel
features x 250 cells on 2 cores).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.formats.dataset import Dataset
from model.geo.geography import haversine_smoothed_targets
from model.workers import pool_context
from train.embed import ids_hash

log = logging.getLogger(__name__)

THUMB_PX = 8
THUMB_VERSION = "thumb-draft-box-v1"
MIN_TRAIN = 20  # fewer train locations than this: no baseline, no probes
PROBES = ("driving_side", "sign_script", "country", "koppen_main")
L2 = 1e-3  # weight penalty (on the mean loss) of every linear classifier here
MAX_ITER = 100  # L-BFGS iterations (fixed: same input, thread count -> same weights)


# --- features ---------------------------------------------------------------------------------------------


def thumbnail(path: Path, px: int = THUMB_PX) -> np.ndarray:
    """One image -> (px, px, 3) float32 in [0, 1]: box-filtered to px x px (JPEGs are first decoded at the
    smallest DCT scale that is still >= px, which is itself a box average)."""
    with Image.open(path) as img:
        img.draft("RGB", (px, px))
        small = img.convert("RGB").resize((px, px), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


THUMB_WORKERS = 2  # processes reading thumbnails for large datasets (PIL's Python side holds the GIL)
THUMB_CHUNK = 1024  # locations per task


def pixel_features(ds: Dataset, ids: list[str], views: list[int], px: int = THUMB_PX,
                   progress: Callable[..., None] | None = None, workers: int | None = None) -> np.ndarray:
    """(N, V * px * px * 3) float32: each location's views (in heading order) as px x px RGB thumbnails.
    More than two chunks of locations are read in ``workers`` processes (default ``THUMB_WORKERS``, at most the
    CPU count): threads do not help, the per-image Python work holds the GIL."""
    views = sorted(int(v) for v in views)
    out = np.empty((len(ids), len(views) * px * px * 3), dtype=np.float32)
    paths = [[str(ds.image_path(loc_id, v)) for v in views] for loc_id in ids]
    chunks = [(i, paths[i:i + THUMB_CHUNK]) for i in range(0, len(paths), THUMB_CHUNK)]
    workers = min(THUMB_WORKERS if workers is None else workers, os.cpu_count() or 1)
    pool = pool_context(["train.probes"]).Pool(workers) if workers > 1 and len(chunks) > 2 else None
    try:
        parts = (pool.imap(functools.partial(_thumbs_at, px=px), chunks) if pool else
                 (_thumbs_at(c, px) for c in chunks))
        done = 0
        for i, arr in parts:
            out[i:i + len(arr)] = arr
            done += len(arr)
            if progress:
                progress("thumbnails", done, len(ids))
    finally:
        if pool:
            pool.terminate()
    return out


def _thumbs_at(chunk: tuple[int, list[list[str]]], px: int) -> tuple[int, np.ndarray]:
    """(first row, thumbnails of the chunk's locations)."""
    return chunk[0], np.stack([np.concatenate([thumbnail(Path(p), px).ravel() for p in views])
                               for views in chunk[1]])


def cached_pixel_features(ds: Dataset, ids: list[str], views: list[int], cache_dir: Path | None,
                          fingerprint: str | None, px: int = THUMB_PX, progress=None) -> np.ndarray:
    """:func:`pixel_features` of all ``ids``, cached as ``CACHE/thumbs-<key>.npy`` when a dataset fingerprint
    (content hash, as the embedding cache uses) is given; the key covers the ids, views and size."""
    if cache_dir is None or not fingerprint:
        return pixel_features(ds, ids, views, px, progress)
    key = hashlib.sha256(json.dumps([THUMB_VERSION, fingerprint, sorted(int(v) for v in views), px, ids_hash(ids)])
                         .encode()).hexdigest()
    path = Path(cache_dir) / f"thumbs-{key[:32]}.npy"
    want = (len(ids), len(views) * px * px * 3)
    if path.is_file():
        try:
            arr = np.load(path)
            if arr.shape == want and arr.dtype == np.float32:
                return arr
        except (OSError, ValueError):
            pass
        log.warning("ignoring unreadable thumbnail cache %s", path)
    arr = pixel_features(ds, ids, views, px, progress)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        tmp.replace(path)
    except OSError as e:  # a read-only cache is not an error
        log.warning("could not write thumbnail cache %s: %s", path, e)
    return arr


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Subtract the train mean, divide by the train std (constant features -> 1); computed in float64."""
    train = np.asarray(train, dtype=np.float64)
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return [(x - mu) / sd for x in (train, *(np.asarray(o, dtype=np.float64) for o in others))]


# --- linear softmax classifier ------------------------------------------------------------------------------


def fit_linear(x: np.ndarray, targets: np.ndarray, n_classes: int | None = None, l2: float | None = None,
               max_iter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch L-BFGS from zero weights -> (W (D, C), b (C,)).

    ``targets``: int labels (N,) in [0, n_classes) (cross-entropy) or soft targets (N, C), not necessarily
    normalised (loss -sum_c t_c log p_c, as the geocell head's smoothed loss). Loss = mean + l2 * |W|^2."""
    max_iter = MAX_ITER if max_iter is None else max_iter
    l2 = L2 if l2 is None else l2
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    soft = np.asarray(targets).ndim == 2
    if soft:
        tt = torch.as_tensor(np.asarray(targets, dtype=np.float32))
        c = tt.shape[1]
    else:
        tt = torch.as_tensor(np.asarray(targets, dtype=np.int64))
        c = int(n_classes if n_classes is not None else tt.max().item() + 1)
    # W stored (C, D) as nn.Linear stores it: autograd then forms the weight gradient as g^T x, where x^T g
    # (the (D, C) layout's) runs up to 28x slower in MKL for this tall, skinny x on some CPUs
    # (docs/training.md)
    w = torch.zeros(c, xt.shape[1], dtype=xt.dtype, requires_grad=True)
    b = torch.zeros(c, dtype=xt.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logp = torch.log_softmax(torch.nn.functional.linear(xt, w, b), dim=1)
        nll = -(tt * logp).sum(1).mean() if soft else torch.nn.functional.nll_loss(logp, tt)
        loss = nll + l2 * (w * w).sum()
        loss.backward()
        return loss

    with _one_thread():  # same result whatever the caller's thread count; and on a busy CPU, 1 thread is far
        opt.step(closure)  # faster than OpenMP regions that wait for a second core
    return np.ascontiguousarray(w.detach().numpy().T), b.detach().numpy()


_ONE_THREAD = {"lock": threading.Lock(), "inside": 0, "saved": 0}


@contextlib.contextmanager
def _one_thread():
    """torch on one thread while any fit runs. torch's thread count is process-wide, so fits running side by side
    (``pigeon eval`` runs two) share one section: the first in saves the count, the last out restores it."""
    s = _ONE_THREAD
    with s["lock"]:
        if s["inside"] == 0:
            s["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        s["inside"] += 1
    try:
        yield
    finally:
        with s["lock"]:
            s["inside"] -= 1
            if s["inside"] == 0:
                torch.set_num_threads(s["saved"])


def linear_logits(x: np.ndarray, wb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) @ wb[0] + wb[1]


# --- probes -----------------------------------------------------------------------------------------------


def linear_probe(x_train: np.ndarray, y_train, x_eval: np.ndarray, y_eval) -> dict | None:
    """Logistic regression on standardised features, train -> eval. Labels are strings, '' = unknown (left
    out of both sides); eval labels unseen in train count as wrong. ``majority``: the eval rate of the most
    frequent train class. None when fewer than 2 classes or no labelled rows."""
    y_train, y_eval = np.asarray(y_train, dtype=object), np.asarray(y_eval, dtype=object)
    kt, ke = y_train != "", y_eval != ""
    classes, counts = np.unique(y_train[kt].astype(str), return_counts=True)
    if len(classes) < 2 or ke.sum() == 0:
        return None
    lut = {c: i for i, c in enumerate(classes)}
    xtr, xev = standardise(x_train[kt], x_eval[ke])
    wb = fit_linear(xtr, np.array([lut[c] for c in y_train[kt]]), len(classes))
    pred = classes[linear_logits(xev, wb).argmax(1)]
    truth = y_eval[ke].astype(str)
    return {"accuracy": float(np.mean(pred == truth)),
            "majority": float(np.mean(truth == classes[counts.argmax()])),
            "n_classes": len(classes), "n_train": int(kt.sum()), "n_eval": int(ke.sum())}


def sign_scripts(ds: Dataset, countries: np.ndarray, given: np.ndarray | None = None) -> np.ndarray:
    """ISO 15924 script of the signs per location ('' unknown): the dataset's ``script`` column where filled,
    else the country's first CLDR script from the offline geodata (the synthetic world paints that script
    everywhere but in Serbia, where its signs are Cyrillic and CLDR lists Latin first)."""
    out = np.array([""] * len(countries) if given is None else [str(g) for g in given], dtype=object)
    todo = sorted({str(c) for c, o in zip(countries, out) if c and not o})
    if not todo:
        return out
    from model.geo.geodata import load_or_none

    geo = load_or_none("sign script probe")

    def info(cc: str) -> dict:
        try:
            return geo.country_info(cc) if geo is not None else {}
        except (ValueError, KeyError):
            return {}

    lut = {cc: str(info(cc).get("scripts", "") or "").split(";")[0].strip() for cc in todo}
    return np.array([o or lut.get(str(c), "") for c, o in zip(countries, out)], dtype=object)


def probe_labels(ds: Dataset, column: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
    """Per-location string labels ('' unknown) of every probe; ``column(name)`` reads a locations.csv column
    (``LocationTable.column``)."""
    country = column("country")
    script = column("script")
    return {"driving_side": column("driving_side"),
            "sign_script": sign_scripts(ds, country, script if any(script) else None),
            "country": country,
            "koppen_main": np.array([k[:1].upper() for k in column("koppen")], dtype=object)}


def run_probes(x_train: np.ndarray, x_eval: np.ndarray, labels: dict[str, np.ndarray], train: np.ndarray,
               idx: np.ndarray) -> dict[str, dict]:
    """Every probe of ``labels`` (full-table arrays) on features of the train rows and the eval rows."""
    out = {}
    for name, y in labels.items():
        res = linear_probe(x_train, y[train], x_eval, y[idx])
        if res is not None:
            out[name] = res
    return out


# --- raw-pixel geolocation baseline ---------------------------------------------------------------------


def raw_pixel_logits(x_train: np.ndarray, train_latlon: np.ndarray, train_cells: np.ndarray,
                     x_eval: np.ndarray, centroids_deg: np.ndarray, tau_km: float = 75.0,
                     smoothing: bool = True) -> np.ndarray:
    """Geocell logits (N_eval, C) of a linear softmax classifier on standardised pixel features trained with
    the head's targets."""
    xtr, xev = standardise(x_train, x_eval)
    if smoothing:
        targets = haversine_smoothed_targets(train_latlon, centroids_deg, tau_km, normalize=False)
        wb = fit_linear(xtr, targets)
    else:
        wb = fit_linear(xtr, np.asarray(train_cells), len(centroids_deg))
    return linear_logits(xev, wb)


def warnings_for(metrics: dict, margin: float = 0.10) -> list[str]:
    """Plain-language alarms: the run's GeoGuessr score not clearly (``margin``) above the raw-pixel
    baseline's; an embedding probe at (within 0.01 of) its majority rate, or below its raw-pixel probe (or
    equal to it, unless both decode the label perfectly)."""
    out = []
    px = (metrics.get("baselines") or {}).get("raw_pixels")
    if px is not None and "geoguessr_score" in metrics:
        best = max([metrics["geoguessr_score"]]
                   + [m["geoguessr_score"] for m in (metrics.get("guess_modes") or {}).values()])
        px_best = max([px["geoguessr_score"]]
                      + [m["geoguessr_score"] for m in (px.get("guess_modes") or {}).values()])
        if best < (1 + margin) * px_best:
            out.append(f"LEARNED LITTLE OR NOTHING: the run's best GeoGuessr score {best:.0f} is not "
                       f"{margin:.0%} above a linear classifier on 8x8-pixel thumbnails ({px_best:.0f})")
    emb, raw = metrics.get("probes") or {}, metrics.get("probes_raw_pixels") or {}
    for name, p in emb.items():
        px_acc = raw[name]["accuracy"] if name in raw else None
        if p["accuracy"] <= p["majority"] + 0.01:
            out.append(f"probe {name}: the embedding is at the majority rate ({p['accuracy']:.1%} vs "
                       f"{p['majority']:.1%})")
        elif px_acc is not None and (p["accuracy"] < px_acc or p["accuracy"] == px_acc < 0.995):
            out.append(f"probe {name}: the embedding ({p['accuracy']:.1%}) is no better than raw 8x8 pixels "
                       f"({raw[name]['accuracy']:.1%})")
    return out


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    res = fn(*args, **kwargs)
    return res, round(time.perf_counter() - t, 2)
