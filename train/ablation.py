"""PIGEON's cumulative ablation (docs/method.md §3.1) on one dataset, in one run: each row removes one more
component.

Rows: + text cue (the played guess with the signs read, from ``metrics["text_cue"]`` when ``pigeon eval
--text-cue`` computed it) -> full (with hierarchical refinement) -> minus refinement (the run as trained) -> [minus
the weight average: the run as trained with the encoder stage's live weights of its last step, tower and head, a
side row that the rows below do not inherit; 'n/a' without ``encoder.ema_decay``] -> minus the head trained with
the tower (a head refitted on the tower's frozen embeddings, PIGEON's stage; 'n/a' for a run
whose head was fitted that way) -> minus order-aware fusion (the head retrained on the view mean of the same tower;
'n/a' for a run that averages its views) -> minus tower training (contrastive pretraining and the supervised
encoder stage: the backbone as initialised / as loaded from its pretrained tag) -> minus semantic geocells (naive
rectangles) -> minus multi-task heads -> minus four-view panorama (view 0 only) -> minus haversine
smoothing (one-hot labels). Rows 3+ retrain heads on cached embeddings with the run's own config and seed.

The full row refines the run's geocell guesses with ``model.index.refine_predictions`` (the run's
retrieval index); a run without an index (``pigeon index`` builds one) gets an 'n/a' note instead.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from model import paths
from model.formats import rundir
from model.formats.dataset import load_dataset
from model.geo.geography import ACCURACY_THRESHOLDS_KM
from model.index import refine_predictions
from model.network import load_run
from model.views import RETRIEVAL_FUSION, fuse_views
from model.workers import pool_context
from train.config import load_run_config
from train.data import LocationTable
from train.distributed import Dist
from train.evaluate import countries_at, geolocation_metrics, run_embeddings, run_views, true_countries
from train.head import predict_logits
from train.pipeline import (Stage, backbone_clip, embeddings, encoder_identity, ensure_geocells, fit_head,
                            location_embeddings)

log = logging.getLogger(__name__)
ROWS = (("text_cue", "+ text cue (played expected-score guess, signs read)"), ("full", "PIGEON (full)"), ("no_refinement", "- hierarchical guess refinement"),
        ("no_weight_average", "- weight average (the tower and head at their last step; this row only)"),
        ("no_encoder_head", "- head trained with the tower (refitted on its frozen embeddings)"),
        ("no_order_fusion", "- views concatenated in heading order (mean)"),
        ("no_pretraining", "- tower training (pretraining, supervised encoder)"),
        ("no_semantic_cells", "- semantic geocells"),
        ("no_multitask", "- multi-task prediction heads"), ("no_panorama", "- four-image panorama"),
        ("no_smoothing", "- haversine smoothing"))
NOTES = (
    (
        "The encoder is frozen after pretraining, so the auxiliary heads cannot change the geocell head "
        "(separate linear heads on a fixed input): '- multi-task' matches the row above it up to float noise; "
        "in the paper the multi-task signal mattered because the last CLIP block was still being fine-tuned."
    ),
)


def _metrics(pred: np.ndarray, true: np.ndarray, true_country, logits=None, cells=None) -> dict:
    pred_country = countries_at(pred) if true_country is not None else None
    return geolocation_metrics(pred, true, pred_country, true_country, logits, cells)


def run_ablation(run_dir: Path, data_dir: Path, out_dir: Path, split: str, device: torch.device,
                 run_metrics: dict, cache_dir: Path | None = None, progress=None) -> dict[str, Any]:
    """Compute every row; writes ``ablation.json`` and ``ablation.md`` into ``out_dir`` and returns the
    table."""
    model, info = load_run(run_dir, device)
    cfg = load_run_config(Path(run_dir) / rundir.CONFIG_FILE)
    cache = paths.cache_dir(cache_dir or cfg.runtime.cache_dir)
    cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, cache_dir=str(cache)))
    ds = load_dataset(data_dir, check_images=True)
    table = LocationTable.from_dataset(ds)
    st = Stage(cfg, ds, table, Dist(device=torch.device(device)), Path(out_dir) / "ablation", progress)
    idx = table.indices(split)
    true, true_country = table.latlon_deg[idx], true_countries(table, idx)
    rows: dict[str, dict | None] = {"full": None, "no_refinement": run_metrics}
    notes: dict[str, str] = {}
    text = run_metrics.get("text_cue")
    rows["text_cue"] = text["on"] if text else None
    if not text:
        notes["text_cue"] = "n/a: evaluate with `pigeon eval --text-cue`"
    elif text["rounds"] != len(table.indices(split)):
        notes["text_cue_rounds"] = f"the text cue row is on a sample of {text['rounds']} rounds"
    emb_views = run_embeddings(model, info, ds, table, device, Path(cache), progress)[0]  # (N, V, D)
    emb = fuse_views(emb_views, info.fusion)[idx]
    logits = predict_logits(model.head.cpu(), emb).numpy()
    query = fuse_views(emb_views, RETRIEVAL_FUSION)[idx]  # the index holds view means (model.views)
    try:
        rows["full"] = _metrics(
            np.asarray(refine_predictions(run_dir, query.numpy(), logits)), true, true_country
        )
    except FileNotFoundError as e:  # the run has no retrieval index yet (`pigeon index`)
        log.warning("ablation: no refinement row: %s", e)
        notes["full"] = f"n/a: {e}"
    rows["no_weight_average"], why = _live_weights_row(model, info, cfg, st, idx, true, true_country)
    if why:
        notes["no_weight_average"] = why
    emb0 = embeddings(st, backbone_clip(st, pretrained=False).visual)
    naive = dataclasses.replace(cfg.geocells, method="naive")
    naive_dir = ensure_geocells(st, naive, st.out / "naive-geocells")
    h = dataclasses.replace(cfg.head, fusion="mean", source="train")
    variants = []
    if cfg.head.source == "encoder":
        variants.append(("no_encoder_head", info.geocells_dir, dataclasses.replace(cfg.head, source="train"),
                         emb_views))
    else:
        notes["no_encoder_head"] = "n/a: the run's head was fitted on frozen embeddings (head.source = \"train\")"
    if cfg.head.fusion != "mean" and not cfg.head.single_view:
        variants.append(("no_order_fusion", info.geocells_dir, h, emb_views))
    else:
        notes["no_order_fusion"] = "n/a: the run averages its views"
    variants += [("no_pretraining", info.geocells_dir, h, emb0), ("no_semantic_cells", naive_dir, h, emb0)]
    h = dataclasses.replace(h, multitask=False)
    variants.append(("no_multitask", naive_dir, h, emb0))
    h = dataclasses.replace(h, single_view=True)
    variants.append(("no_panorama", naive_dir, h, emb0))
    variants.append(("no_smoothing", naive_dir, dataclasses.replace(h, smoothing=False), emb0))
    for key, logits, centroids, true_cells in _fit_heads(st, Path(data_dir), variants, idx):
        rows[key] = _metrics(centroids[logits.argmax(1)], true, true_country, logits, true_cells)
    table_out = {"split": split, "run": str(run_dir), "dataset": str(data_dir),
                 "rows": [{"key": k, "label": label, "metrics": rows.get(k),
                           "note": notes.get(k, "") if rows.get(k) is None else ""} for k, label in ROWS],
                 "notes": list(NOTES) + ([notes["text_cue_rounds"]] if "text_cue_rounds" in notes else [])}
    out_dir = Path(out_dir)
    (out_dir / "ablation.json").write_text(json.dumps(table_out, indent=2) + "\n", encoding="utf-8")
    (out_dir / "ablation.md").write_text(ablation_markdown(table_out), encoding="utf-8")
    return table_out


HEAD_WORKERS = 2  # processes fitting the rows' heads on CPU, one torch thread each


def _fit_heads(st: Stage, data_dir: Path, variants: list, idx: np.ndarray):
    """Fit the heads of ``variants`` ((key, geocells folder, head config, embeddings), ...) and yield (key,
    logits on ``idx``, cell centroids, true cells of ``idx``) in their order.

    On CPU the fits run in ``HEAD_WORKERS`` worker processes (``model.workers.pool_context``) on one torch thread
    each: a head step is many small ops whose Python side holds the GIL, so two fits in threads of one process do
    not overlap, while two processes take about 0.8x the time of one after the other on two threads (demo world:
    250-269 s against 327 s). On the demo world one torch thread gave the same weights and rows as two;
    tests/test_encoder.py compares the rows of the pool with those of one fit after the other here. On a GPU,
    under DDP, or with one core they run in this process."""
    workers = min(HEAD_WORKERS, len(variants), os.cpu_count() or 1)
    if st.d.device.type != "cpu" or workers < 2 or st.d.enabled:
        for key, cells_dir, head_cfg, e in variants:
            log.info("ablation: training the head for %s", key)
            yield _fit_one(st, key, cells_dir, head_cfg, e, idx)
        return
    st.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="heads-", dir=st.out) as tmp:
        files: dict[int, str] = {}  # the embeddings travel as files (no shared-memory limits), dtype kept
        for _, _, _, e in variants:
            if id(e) not in files:
                files[id(e)] = str(Path(tmp) / f"emb{len(files)}.safetensors")
                save_file({"emb": e.contiguous()}, files[id(e)])
        jobs = [(key, str(cells_dir), head_cfg, files[id(e)], idx) for key, cells_dir, head_cfg, e in variants]
        log.info("ablation: training the heads for %s in %d processes", ", ".join(j[0] for j in jobs), workers)
        done = {}
        with pool_context(["train.ablation"]).Pool(workers, _start_worker, (st.cfg, str(data_dir))) as pool:
            for res in pool.imap_unordered(_fit_in_worker, jobs):
                log.info("ablation: head for %s done", res[0])
                done[res[0]] = res
    yield from (done[j[0]] for j in jobs)


def _fit_one(st: Stage, key: str, cells_dir: Path, head_cfg, emb: torch.Tensor, idx: np.ndarray):
    res, targets, cells = fit_head(st, emb, Path(cells_dir), head_cfg, None)
    x = location_embeddings(emb, head_cfg.single_view, head_cfg.fusion)
    return key, predict_logits(res.head, x[idx]).numpy(), cells.centroids_deg, targets.cells[idx]


_WORKER: dict[str, Stage] = {}  # a head-fitting worker process's stage, read once when the process starts


def _start_worker(cfg, data_dir: str) -> None:
    """Initialise a worker process of :func:`_fit_heads`: one torch thread, the dataset and its table read once
    for all the heads the process fits."""
    torch.set_num_threads(1)
    ds = load_dataset(data_dir)
    _WORKER["stage"] = Stage(cfg, ds, LocationTable.from_dataset(ds), Dist(device=torch.device("cpu")),
                             Path(data_dir), None)


def _fit_in_worker(job: tuple):
    """One row's head in a worker process (see :func:`_fit_heads`)."""
    key, cells_dir, head_cfg, emb_file, idx = job
    return _fit_one(_WORKER["stage"], key, Path(cells_dir), head_cfg, load_file(emb_file)["emb"], idx)


def _live_weights_row(model, info, cfg, st: Stage, idx: np.ndarray, true: np.ndarray, true_country
                      ) -> tuple[dict | None, str]:
    """The run as trained, but with the encoder stage's live weights of its last step instead of their moving
    average (``encoder.ema_decay``), read from the stage's checkpoint (``RUN/state/encoder``): tower and head
    swapped, evaluated on ``idx`` only (no head is fitted). -> (metrics, '') or (None, why not)."""
    import copy

    from train.embed import cached_views, embed_locations
    from train.state import StateMismatchError, load_checkpoint, module_weights

    if cfg.encoder.epochs == 0 or cfg.encoder.ema_decay == 0 or cfg.head.source != "encoder":
        return None, "n/a: the run keeps no weight average (encoder.ema_decay = 0 or no encoder head)"
    cells = info.geocells()
    try:
        ck = load_checkpoint(Path(info.run_dir) / "state" / "encoder", encoder_identity(st, info.geocells_dir))
    except (StateMismatchError, ValueError) as e:
        return None, f"n/a: the encoder stage's checkpoint does not match this run ({e})"
    if ck is None:
        return None, "n/a: the run folder has no encoder-stage checkpoint (state/encoder); exports drop it"
    live = module_weights(ck["weights"], "net")
    visual, head = copy.deepcopy(model.visual).cpu(), copy.deepcopy(model.head).cpu()
    visual.load_state_dict(module_weights(live, "visual"))
    head.load_state_dict(module_weights(live, "head"))
    views = run_views(info, st.ds)
    px = cached_views(st.ds, st.table, views, info.image_size, st.cache_dir, create=False, mmap=True)
    emb = embed_locations(visual, st.ds, st.table, idx, views, info.image_size, info.mean, info.std, Dist(),
                          cfg.runtime.batch_size, cfg.runtime.decode_threads, st.progress,
                          None if px is None else (np.arange(len(st.table)), px))  # the encoder stage's views
    logits = predict_logits(head, fuse_views(emb, info.fusion)).numpy()
    return _metrics(cells.centroids_deg[logits.argmax(1)], true, true_country, logits,
                    cells.assign(true[:, 0], true[:, 1])), ""


def ablation_markdown(t: dict[str, Any]) -> str:
    cols = [f"{k:g} km" for k in ACCURACY_THRESHOLDS_KM] + [
        "country %",
        "mean km",
        "median km",
        "GeoGuessr score",
        "cell top-1",
    ]
    lines = [f"# Cumulative ablation ({t['split']} split of {t['dataset']})", "",
             "| configuration | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row in t["rows"]:
        m = row["metrics"]
        if m is None:
            cells = [row["note"]] + [""] * (len(cols) - 1)
        else:
            ca = "n/a" if m.get("country_accuracy") is None else f"{100 * m['country_accuracy']:.2f}"
            top1 = f"{100 * m['geocell_top1']:.2f}" if "geocell_top1" in m else ""
            cells = [f"{100 * m['accuracy_km'][f'{k:g}']:.2f}" for k in ACCURACY_THRESHOLDS_KM] + \
                [ca, f"{m['mean_km']:.1f}", f"{m['median_km']:.1f}", f"{m['geoguessr_score']:.0f}", top1]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    lines += [""] + [f"Note: {n}" for n in t["notes"]]
    return "\n".join(lines) + "\n"
