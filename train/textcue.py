"""Evaluating the text cue: the played guess with and without it on the same rounds.

OCR is the slow part (a few tenths of a second per view on 2 cores), so the reads of a dataset are cached once
per (dataset fingerprint, engine settings) in the cache folder, and the fusion weights can then be tried cheaply
(``scripts/tune_text_cue.py`` tunes them on validation renders). Reads are taken from the dataset's images at the
resolution they were rendered, as the bot reads its full-resolution captures.

Metrics (``metrics.json`` key ``text_cue``): ``off`` and ``on`` (the usual geolocation metrics of the played
guess), ``rounds``, ``read_rate`` (rounds with a confident place match, i.e. the guess snapped to a place),
``match_precision`` (of those, the share whose place is within ``CORRECT_KM`` of the truth), ``rounds_with_text``
(any read), the engine settings and the OCR time per view.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from model.formats.dataset import Dataset
from model.text.cue import TextCue, TextCueConfig
from model.text.engines import TextRead

CORRECT_KM = 50.0  # a snapped place this close to the truth counts as a correct match (direction signs point
#                    at places up to a few tens of km away)


def _reads_key(fingerprint: str, cfg: TextCueConfig, ids: list[str]) -> str:
    ocr = {"engine": cfg.engine, "det": cfg.det_limit_side_len, "conf": cfg.min_confidence}
    h = hashlib.sha256(json.dumps([fingerprint, ocr, sorted(ids)], sort_keys=True).encode()).hexdigest()
    return h[:16]


def read_locations(ds: Dataset, ids: list[str], views: list[int], cfg: TextCueConfig, cache_dir: Path,
                   fingerprint: str, progress=None) -> tuple[dict[str, list[TextRead]], float]:
    """OCR of every view of ``ids`` -> ({id: reads}, seconds per view of the uncached part, 0 if cached)."""
    from dataclasses import replace

    from PIL import Image

    from model.text.engines import engine_for

    path = Path(cache_dir) / "text" / f"reads-{_reads_key(fingerprint, cfg, ids)}.json"
    if path.is_file():
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {k: [TextRead(r["text"], r["confidence"], tuple(map(tuple, r["box"])), r["view"]) for r in v]
                for k, v in raw.items()}, 0.0
    engine = engine_for(cfg)
    out: dict[str, list[TextRead]] = {}
    t0, n = time.perf_counter(), 0
    for lid in ids:
        reads = []
        for v, heading in enumerate(views):
            with Image.open(ds.image_path(lid, heading)) as im:
                arr = np.asarray(im.convert("RGB"))
            reads += [replace(r, view=v) for r in engine.read(arr)]
            n += 1
        out[lid] = reads
        if progress is not None:  # the project's progress(stage, done, total) callback
            progress("text cue: reading signs", len(out), len(ids))
    per_view = (time.perf_counter() - t0) / max(n, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: [r.to_dict() for r in v] for k, v in out.items()}), encoding="utf-8")
    return out, per_view


def text_cue_metrics(cue: TextCue, reads: dict[str, list[TextRead]], ids: list[str], probs: np.ndarray,
                     true: np.ndarray, true_country, centroids_deg: np.ndarray, cell_country: list[str],
                     refined: np.ndarray | None, geolocation_metrics,
                     countries_at, evidence: dict | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """The played guess (``model.inference.play``, expected-score mode) off and on, for the same rounds ->
    (metrics, guesses off (N, 2), guesses on (N, 2)). ``evidence``: {id: ``cue.observe(reads)``} computed once,
    for callers that try many fusion weights (the lookups do not depend on them)."""
    from model.geo.geography import haversine_km
    from model.inference import cell_score_matrix, play

    matrix = cell_score_matrix(centroids_deg)
    off, on, snapped, correct, with_text = [], [], 0, 0, 0
    for i, lid in enumerate(ids):
        ref = tuple(refined[i]) if refined is not None else None
        off.append(play(probs[i], centroids_deg, cell_country, "expected_score", ref, score_matrix=matrix).guess)
        ev = evidence[lid] if evidence is not None else cue.observe(reads.get(lid, []))
        with_text += bool(reads.get(lid))
        got = play(probs[i], centroids_deg, cell_country, "expected_score", ref, score_matrix=matrix,
                   text_cue=cue, evidence=ev)
        on.append(got.guess)
        if got.text and got.text["snapped"]:
            snapped += 1
            correct += float(haversine_km(*got.guess, *true[i])) <= CORRECT_KM
    off_a, on_a = np.asarray(off), np.asarray(on)

    def geo(g):
        return geolocation_metrics(g, true, countries_at(g) if true_country is not None else None, true_country)

    return {"off": geo(off_a), "on": geo(on_a), "rounds": len(ids), "rounds_with_text": with_text,
            "read_rate": snapped / max(len(ids), 1),
            "match_precision": (correct / snapped) if snapped else None, "confident_matches": snapped,
            "correct_km": CORRECT_KM, "config": asdict(cue.cfg)}, off_a, on_a


def evaluate_text_cue(cfg: TextCueConfig, ds: Dataset, ids: list[str], views: list[int], probs: np.ndarray,
                      true: np.ndarray, true_country, centroids_deg: np.ndarray, cell_country: list[str],
                      refined: np.ndarray | None, cache_dir: Path, fingerprint: str, geolocation_metrics,
                      countries_at, progress=None) -> dict:
    """Read (cached), fuse and score: the ``text_cue`` entry of metrics.json."""
    from model.text.cue import load_text_cue

    reads, per_view = read_locations(ds, ids, views, cfg, cache_dir, fingerprint, progress)
    cue = load_text_cue(cfg)
    t0 = time.perf_counter()
    metrics, _, _ = text_cue_metrics(cue, reads, ids, probs, true, true_country, centroids_deg, cell_country,
                                     refined, geolocation_metrics, countries_at)
    metrics["fuse_ms_per_round"] = (time.perf_counter() - t0) * 1e3 / max(len(ids), 1)
    metrics["ocr_seconds_per_view"] = per_view or None  # None: the reads came from the cache
    metrics["image_size"] = ds.manifest.get("image_size")
    return metrics
