"""Evaluation (docs/method.md §2.10): distance thresholds, country accuracy, median/mean km, GeoGuessr score,
top-k cells.

Baselines on the same split: a uniformly random point on the sphere, a random training location, and always
the centroid of the most frequent training cell. Country accuracy = the predicted point's country
(``model.geo.geodata.country_at``) equals the true country (the dataset's ``country`` column, else the true
point's country); it is ``None`` when the offline geodata is not installed.

Sanity checks (:mod:`train.probes`): a fourth baseline, ``raw_pixels`` (a linear softmax classifier over the
run's geocells on 8x8-pixel thumbnails of the views, trained on the train split; its ``guess_modes`` holds the
expected-score guess), and linear probes (driving side, sign script, country, Koppen main class) of the run's
fused embedding (``probes``) and of the same thumbnails (``probes_raw_pixels``). ``warnings`` words a run that
learned nothing; ``notes`` says why a check was skipped; ``sanity_seconds`` times them.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model import paths
from model.formats.dataset import load_dataset
from model.geo.geodata import load_or_none
from model.geo.geography import geoguessr_score, haversine_km, threshold_accuracies, xyz_to_latlon
from model.guess import softmax
from model.network import AuxSpec, GeoModel, RunInfo, load_run
from model.views import RETRIEVAL_FUSION, fuse_views
from train.data import LocationTable
from train.distributed import Dist
from train.embed import cached_embeddings
from train.targets import AUX_PURPOSE, raw_regression

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """One split's predictions: N locations."""

    ids: list[str]
    true_latlon: np.ndarray  # (N, 2)
    pred_latlon: np.ndarray  # (N, 2)
    logits: np.ndarray  # (N, C) geocell logits
    true_cells: np.ndarray  # (N,)
    true_country: np.ndarray | None  # (N,) ISO alpha-2, '' unknown
    pred_country: np.ndarray | None
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # name -> point guesses (N, 2)
    guesses: dict[str, np.ndarray] = field(default_factory=dict)  # guess mode -> point guesses (N, 2)
    expected_score: np.ndarray | None = None  # (N,) the model's own expected score of its expected_score guess
    cell_country: np.ndarray | None = None  # (C,) ISO alpha-2 of each geocell, '' unknown


def countries_at(latlon: np.ndarray) -> np.ndarray | None:
    """ISO alpha-2 per point from the offline borders, or None if the geodata is not installed."""
    g = load_or_none("country accuracy")
    return None if g is None else np.asarray(g.country_at(latlon[:, 0], latlon[:, 1]), dtype=object)


def true_countries(table: LocationTable, idx: np.ndarray) -> np.ndarray | None:
    given = table.column("country")[idx]
    if all(given):
        return given
    looked = countries_at(table.latlon_deg[idx])
    return None if looked is None else np.where(given != "", given, looked)


def geolocation_metrics(
    pred_latlon: np.ndarray,
    true_latlon: np.ndarray,
    pred_country=None,
    true_country=None,
    logits: np.ndarray | None = None,
    true_cells: np.ndarray | None = None,
) -> dict:
    """Metrics of point guesses (N, 2) against truths (N, 2); thresholds use strict ``d < t``."""
    d_km = haversine_km(pred_latlon[:, 0], pred_latlon[:, 1], true_latlon[:, 0], true_latlon[:, 1])
    out = {
        "n": len(d_km),
        "accuracy_km": threshold_accuracies(d_km),
        "median_km": float(np.median(d_km)),
        "mean_km": float(np.mean(d_km)),
        "geoguessr_score": float(np.mean(geoguessr_score(d_km))),
        "country_accuracy": None,
    }
    if pred_country is not None and true_country is not None:
        known = np.asarray(true_country) != ""
        out["country_accuracy"] = (
            float(np.mean(np.asarray(pred_country)[known] == np.asarray(true_country)[known]))
            if known.any()
            else None
        )
    if logits is not None and true_cells is not None:
        top = np.argsort(-logits, axis=1)[:, :5]
        out["geocell_top1"] = float(np.mean(top[:, 0] == true_cells))
        out["geocell_top5"] = float(np.mean((top == np.asarray(true_cells)[:, None]).any(axis=1)))
    return out


def baseline_guesses(n: int, train_latlon: np.ndarray, train_cells: np.ndarray, centroids_deg: np.ndarray,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Point guesses (n, 2) of the three baselines."""
    rng = np.random.default_rng(seed)
    sphere = rng.normal(size=(n, 3))
    lat, lon = xyz_to_latlon(sphere / np.linalg.norm(sphere, axis=1, keepdims=True))
    return {"random_uniform_sphere": np.c_[lat, lon],
            "random_train_location": train_latlon[rng.integers(0, len(train_latlon), n)],
            "most_frequent_cell": np.repeat(centroids_deg[[np.bincount(train_cells).argmax()]], n, axis=0)}


def predict(model: GeoModel, info: RunInfo, emb: torch.Tensor) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Embeddings (N, V, D) -> (head outputs as arrays, point guesses (N, 2) = centroid of the argmax
    cell). The views are fused as the Predictor fuses them."""
    x = fuse_views(emb, info.fusion)
    head = model.head.cpu().eval()
    with torch.no_grad():
        out = {k: v.numpy() for k, v in head(x).items()}
    return out, info.geocells().centroids_deg[out["cell"].argmax(axis=1)]


def aux_metrics(out: dict[str, np.ndarray], aux: AuxSpec, table: LocationTable) -> dict:
    """MAE of the de-standardised regression heads (target units), Koppen and month top-1 accuracy."""
    res: dict = {}
    if "regression" in out:
        raw = raw_regression(table, load_or_none(AUX_PURPOSE))
        pred = out["regression"] * np.asarray(aux.reg_std) + np.asarray(aux.reg_mean)
        for j, name in enumerate(aux.regression):
            known = np.isfinite(raw[name])
            res[f"mae_{name}"] = (
                float(np.abs(pred[known, j] - raw[name][known]).mean()) if known.any() else None
            )
    if "koppen" in out:
        lut = {c: i for i, c in enumerate(aux.koppen_classes)}
        y = np.array([lut.get(c, -1) for c in table.column("koppen")])
        res["koppen_accuracy"] = (
            float((out["koppen"].argmax(1) == y)[y >= 0].mean()) if (y >= 0).any() else None
        )
    if "month" in out:
        m = np.array([int(v) - 1 if v.isdigit() and 1 <= int(v) <= 12 else -1 for v in table.column("month")])
        res["month_accuracy"] = (
            float((out["month"].argmax(1) == m)[m >= 0].mean()) if (m >= 0).any() else None
        )
    return res


def eval_cache_dir(info: RunInfo, cache_dir: Path | None = None) -> Path:
    """The embedding (and thumbnail) cache folder of an evaluation: ``cache_dir``, else the run config's
    ``runtime.cache_dir``, else the default cache."""
    return paths.cache_dir(cache_dir or info.config().get("runtime", {}).get("cache_dir"))


def run_views(info: RunInfo, ds) -> list[int]:
    """The dataset's views the run was trained on, in the dataset's (heading) order; view 0 alone if none."""
    return [v for v in ds.views if v in info.views] or ds.views[:1]


def run_embeddings(
    model: GeoModel,
    info: RunInfo,
    ds,
    table: LocationTable,
    device,
    cache_dir: Path | None = None,
    progress=None,
) -> tuple[torch.Tensor, list[int]]:
    """Token-mean embeddings (N, V, D) of every location with the run's backbone (cached), and the views
    used."""
    views = run_views(info, ds)
    runtime = info.config().get("runtime", {})
    cache = eval_cache_dir(info, cache_dir)
    emb = cached_embeddings(
        model.visual,
        info.backbone,
        ds,
        table,
        views,
        info.image_size,
        info.mean,
        info.std,
        cache,
        Dist(device=torch.device(device)),
        int(runtime.get("batch_size", 64)),
        int(runtime.get("decode_threads", 2)),
        progress,
    )
    return emb, views


def guess_mode_guesses(run_dir: Path, emb: torch.Tensor, logits: np.ndarray,
                       centroids_deg: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Point guesses (N, 2) of the Predictor's guess modes for the same head outputs -> ({mode: guesses},
    expected scores (N,) of the expected_score guess): ``head`` (argmax centroid), ``expected_score`` (the candidate
    point maximising the expected GeoGuessr score among the top cells' centroids and the refined point: the point
    ``model.inference.play`` and so the bot plays without the text cue) and ``refined`` (retrieval refinement, when
    the run has an index; ``pigeon index``)."""
    from model.index import INDEX_DIR, refine_predictions
    from model.inference import expected_score_guesses

    guesses = {"head": centroids_deg[logits.argmax(1)]}
    if (Path(run_dir) / INDEX_DIR / "manifest.json").is_file():
        guesses["refined"] = refine_predictions(run_dir, fuse_views(emb, RETRIEVAL_FUSION).float().numpy(), logits)
    # the candidates model.inference.play searches (the head's centroid is among the top cells already)
    extra = guesses["refined"][:, None, :] if "refined" in guesses else None
    guesses["expected_score"], es_value = expected_score_guesses(softmax(logits), centroids_deg, extra=extra)
    return guesses, es_value


def guess_mode_metrics(guesses: dict[str, np.ndarray], true: np.ndarray, true_country) -> dict:
    """Metrics of the guess modes other than ``head`` (the top-level metrics are the head's argmax centroid)."""
    return {name: geolocation_metrics(g, true, countries_at(g) if true_country is not None else None, true_country)
            for name, g in sorted(guesses.items()) if name != "head"}


def sanity_metrics(info: RunInfo, ds, table: LocationTable, idx: np.ndarray, train: np.ndarray,
                   views: list[int], fused: np.ndarray, true: np.ndarray, true_country,
                   cache_dir: Path | None = None, progress=None) -> tuple[dict, np.ndarray | None]:
    """The raw-pixel baseline and the linear probes (:mod:`train.probes`) -> (metrics keys to add, the
    baseline's head guesses (N_eval, 2) or None). ``fused``: the run's fused embeddings of every table row.
    Thumbnails of every location (the run's views, in heading order) are read once and cached."""
    from model.inference import expected_score_guesses
    from train import probes
    from train.embed import dataset_fingerprint

    res: dict = {"notes": {}, "sanity_seconds": {}}
    secs = res["sanity_seconds"]
    if len(train) < probes.MIN_TRAIN:
        why = (f"skipped: the dataset has {len(train)} train locations (the raw-pixel baseline and the "
               f"probes need >= {probes.MIN_TRAIN})")
        res["notes"].update(raw_pixels=why, probes=why)
        return res, None
    cache = eval_cache_dir(info, cache_dir)
    pixels, secs["thumbnails"] = probes.timed(
        probes.cached_pixel_features, ds, table.ids, views, cache, dataset_fingerprint(ds), progress=progress)
    cells = info.geocells()
    head_cfg = info.config().get("head", {})
    tr = table.latlon_deg[train]
    labels = probes.probe_labels(ds, table.column)
    # the three fits run two at a time, each on one thread (probes.fit_linear): the same weights as one after
    # the other, in about half the time on two cores
    with ThreadPoolExecutor(2) as pool:
        jobs = {"raw_pixels": pool.submit(
                    probes.timed, probes.raw_pixel_logits, pixels[train], tr, cells.assign(tr[:, 0], tr[:, 1]),
                    pixels[idx], cells.centroids_deg, float(head_cfg.get("tau_km", 75.0)),
                    bool(head_cfg.get("smoothing", True))),
                "probes": pool.submit(probes.timed, probes.run_probes, fused[train], fused[idx], labels, train, idx),
                "probes_raw_pixels": pool.submit(probes.timed, probes.run_probes, pixels[train], pixels[idx], labels,
                                                 train, idx)}
        done = {name: job.result() for name, job in jobs.items()}
    for name, (_, seconds) in done.items():
        secs[name] = seconds
    logits = done["raw_pixels"][0]
    guess = cells.centroids_deg[logits.argmax(1)]
    expected = expected_score_guesses(softmax(logits), cells.centroids_deg)[0]

    def geo(g, with_cells=False):
        country = countries_at(g) if true_country is not None else None
        return geolocation_metrics(g, true, country, true_country,
                                   *((logits, cells.assign(true[:, 0], true[:, 1])) if with_cells else ()))

    res["raw_pixels"] = {**geo(guess, True), "guess_modes": {"expected_score": geo(expected)},
                         "features": int(pixels.shape[1]), "views": sorted(int(v) for v in views),
                         "train_locations": len(train)}
    res["probes"], res["probes_raw_pixels"] = done["probes"][0], done["probes_raw_pixels"][0]
    if np.array_equal(np.sort(idx), np.sort(train)):
        res["notes"]["raw_pixels"] = ("in-sample: the evaluated split is the train split the baseline and the "
                                      "probes were fitted on")
    missing = [n for n in probes.PROBES if n not in res["probes"]]
    if missing:
        res["notes"]["probes"] = (f"no probe of {', '.join(missing)}: fewer than 2 known classes in the "
                                  "train split")
    return res, guess


def evaluate_run(
    run_dir: Path,
    data_dir: Path,
    split: str,
    device: torch.device,
    cache_dir: Path | None = None,
    progress=None,
    text_cue=None,
    text_limit: int = 0,
) -> tuple[dict, Predictions]:
    """Evaluate a run directory on one split of a dataset -> (metrics incl. baselines, predictions).

    ``text_cue`` (a ``model.text.cue.TextCueConfig``): also play the guess with the text cue on the same rounds
    (``metrics["text_cue"]``, :mod:`train.textcue`), on at most ``text_limit`` rounds (0 = all; a seeded
    sample otherwise, since OCR costs tenths of a second per view)."""
    model, info = load_run(run_dir, device)
    ds = load_dataset(data_dir, check_images=True)
    table = LocationTable.from_dataset(ds)
    idx = table.indices(split)
    if len(idx) == 0:
        raise ValueError(f"dataset {data_dir} has no '{split}' locations to evaluate on")
    emb, views = run_embeddings(model, info, ds, table, device, cache_dir, progress)
    out, pred = predict(model, info, emb[idx])
    logits = out["cell"]
    cells = info.geocells()
    true = table.latlon_deg[idx]
    preds = Predictions([table.ids[i] for i in idx], true, pred, logits, cells.assign(true[:, 0], true[:, 1]),
                        true_countries(table, idx), None)
    preds.pred_country = countries_at(pred) if preds.true_country is not None else None
    metrics = geolocation_metrics(
        pred, true, preds.pred_country, preds.true_country, logits, preds.true_cells
    )
    train = table.indices("train")
    if len(train):
        tr = table.latlon_deg[train]
        preds.baselines = baseline_guesses(
            len(idx), tr, cells.assign(tr[:, 0], tr[:, 1]), cells.centroids_deg
        )
    else:  # only the random point on the sphere needs no train split; the report names the missing ones
        preds.baselines = {"random_uniform_sphere": baseline_guesses(
            len(idx), cells.centroids_deg, np.zeros(len(cells.centroids_deg), int), cells.centroids_deg
        )["random_uniform_sphere"]}
    metrics["baselines"] = {
        name: geolocation_metrics(g, true, countries_at(g) if preds.true_country is not None else None,
                                  preds.true_country) for name, g in preds.baselines.items()}
    preds.guesses, preds.expected_score = guess_mode_guesses(run_dir, emb[idx], logits, cells.centroids_deg)
    metrics["guess_modes"] = guess_mode_metrics(preds.guesses, true, preds.true_country)
    table_cells = getattr(cells, "table", None)
    if table_cells is not None and "country" in table_cells:
        preds.cell_country = table_cells["country"].fillna("").astype(str).to_numpy(dtype=object)
    if info.aux.enabled:
        metrics["aux"] = aux_metrics(out, info.aux, table.subset(idx))
    fused = fuse_views(emb, info.fusion).float().numpy()
    sanity, pixel_guess = sanity_metrics(info, ds, table, idx, train, views, fused, true, preds.true_country,
                                         cache_dir, progress)
    if pixel_guess is not None:
        metrics["baselines"]["raw_pixels"] = sanity.pop("raw_pixels")
        preds.baselines["raw_pixels"] = pixel_guess
    metrics.update(sanity)
    if not metrics["notes"]:
        del metrics["notes"]
    if text_cue is not None:
        metrics["text_cue"] = _text_cue_metrics(text_cue, text_limit, info, ds, table, idx, views, logits, preds,
                                                cache_dir, progress)
    from train.probes import warnings_for

    metrics["warnings"] = warnings_for(metrics)
    metrics.update(split=split, run=str(run_dir), dataset=str(data_dir), views=views)
    return metrics, preds


def _text_cue_metrics(cfg, limit: int, info: RunInfo, ds, table: LocationTable, idx: np.ndarray,
                      views: list[int], logits: np.ndarray, preds: Predictions, cache_dir, progress) -> dict:
    from train.embed import dataset_fingerprint
    from train.textcue import evaluate_text_cue

    pick = np.arange(len(idx))
    if limit and limit < len(idx):
        pick = np.sort(np.random.default_rng(2024).choice(len(idx), limit, replace=False))
    cells = info.geocells()
    cell_country = (list(preds.cell_country) if preds.cell_country is not None
                    else [""] * len(cells.centroids_deg))  # set by evaluate_run from the geocell table
    refined = preds.guesses.get("refined")
    res = evaluate_text_cue(cfg, ds, [table.ids[i] for i in idx[pick]], views, softmax(logits[pick]),
                            preds.true_latlon[pick], preds.true_country[pick] if preds.true_country is not None else None,
                            np.asarray(cells.centroids_deg, np.float64), cell_country,
                            refined[pick] if refined is not None else None, eval_cache_dir(info, cache_dir),
                            dataset_fingerprint(ds), geolocation_metrics, countries_at, progress)
    return res
