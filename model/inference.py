"""The inference engine: ``Predictor.load(run_dir).predict(views)``.

One location's views (the 4 headings of a round, or a single photo) -> the geocell distribution of the head,
its top-k cells, the refined guess (retrieval refinement, :mod:`model.retrieval`, when the run has an
``index/``) and an expected-score-maximising guess (argmax over candidate points x of sum_c p(c) * score(d(x, c)),
the score as in docs/method.md, "GeoGuessr facts used by the bot and the arena"). Batched, CPU or GPU (device chosen once at load), warmed up at load so the first round is fast.
Building a run's index, and refining precomputed outputs with it, is :mod:`model.index`.
"""
from __future__ import annotations

import io
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from model.device import resolve_device
from model.geo.geography import GEOGUESSR_DECAY_KM, geoguessr_score, pairwise_haversine_km
from model.guess import DEFAULT_GUESS_MODE, GUESS_MODES
from model.index import INDEX_DIR
from model.views import RETRIEVAL_FUSION, fuse_views

log = logging.getLogger(__name__)


class PredictError(ValueError):
    """Bad input to the predictor (unreadable image, wrong number of views)."""


def load_image(item: Any):
    """A path, raw bytes, a PIL image or an HxWx3 uint8 array -> RGB PIL image; clear error otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(item, Image.Image):
            img = item
        elif isinstance(item, (bytes, bytearray, memoryview)):
            img = Image.open(io.BytesIO(bytes(item)))
        elif isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[2] not in (3, 4) or item.dtype != np.uint8:
                raise PredictError(f"image array must be HxWx3 uint8, got {item.shape} {item.dtype}")
            img = Image.fromarray(item[..., :3])
        else:
            path = Path(item)
            if not path.is_file():
                raise PredictError(f"image file not found: {path}")
            img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError) as e:
        raise PredictError(f"cannot read image {str(item)[:80] if not isinstance(item, bytes) else '<bytes>'}: {e}") from None
    if min(img.size) < 8:
        raise PredictError(f"image too small: {img.size}")
    return img.convert("RGB")


@dataclass
class Prediction:
    """One location's prediction. Coordinates are (lat_deg, lon_deg)."""

    guess: tuple[float, float]                    # the point to play, per the Predictor's guess_mode
    head_guess: tuple[float, float]               # centroid of the argmax cell (unrefined PIGEON guess)
    refined_guess: tuple[float, float] | None     # retrieval refinement (None without an index)
    expected_score_guess: tuple[float, float]     # argmax_x sum_c p(c) score(d(x, c))
    expected_score: float                         # its expected GeoGuessr score under the head's distribution
    top_cells: list[dict[str, Any]]               # [{cell, p, lat, lon, country}], best first
    cell_probs: np.ndarray = field(repr=False)    # (C,) softmax over geocells (fused with the text cue if on)
    timings_ms: dict[str, float] = field(default_factory=dict)
    text: dict[str, Any] | None = None            # what the text cue read, matched and did (None when off)

    def to_dict(self, heat_min_p: float = 1e-3) -> dict[str, Any]:
        """JSON-ready: everything but the full distribution, which is given as heat points above a threshold."""
        return {"guess": list(self.guess), "head_guess": list(self.head_guess),
                "refined_guess": list(self.refined_guess) if self.refined_guess else None,
                "expected_score_guess": list(self.expected_score_guess),
                "expected_score": round(self.expected_score, 1), "top_cells": self.top_cells,
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}, "text": self.text}


class Predictor:
    """A trained run ready for inference. Build with :meth:`load`."""

    def __init__(self, model, info, index=None, device: str = "cpu", guess_mode: str = DEFAULT_GUESS_MODE,
                 top_k: int = 5, candidates: int = 256, text_cue=None, ocr=None):
        """``text_cue`` (a ``model.text.cue.TextCue``) and ``ocr`` (a ``model.text.engines`` engine, or a list of
        them that read a location's views side by side) turn on
        the text cue: every view is read at the resolution it came in and the reads are fused with the head's
        distribution (see :mod:`model.text.cue`); ``guess`` then honours them. Both or neither."""
        if (text_cue is None) != (ocr is None):
            raise ValueError("the text cue needs both a TextCue and an OCR engine")
        self.model, self.info, self.index, self.device = model, info, index, device
        self.text_cue, self.ocr, self._ocr_pool = text_cue, ocr, None
        if guess_mode not in GUESS_MODES:
            raise ValueError(f"guess_mode {guess_mode!r}: use {', '.join(GUESS_MODES)}")
        self.guess_mode, self.top_k, self.candidates = guess_mode, top_k, candidates
        cells = info.geocells()
        self.centroids_deg = np.asarray(cells.centroids_deg, dtype=np.float64)
        table = getattr(cells, "table", None)
        self.cell_country = (table["country"].fillna("").astype(str).tolist() if table is not None and "country" in table
                             else [""] * len(self.centroids_deg))
        self._score_matrix = cell_score_matrix(self.centroids_deg)  # for the expected-score guess
        self._matrices: dict[float, np.ndarray | None] = {GEOGUESSR_DECAY_KM: self._score_matrix}

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "auto", warmup: bool = True, text_cue=None,
             **kwargs) -> "Predictor":
        """``text_cue``: None/False (off) or a ``model.text.cue.TextCueConfig`` (on when its ``enabled``)."""
        from model.network import load_run
        from model.retrieval import RefinementIndex

        device = resolve_device(device)
        model, info = load_run(run_dir, device)
        index_dir = Path(run_dir) / INDEX_DIR
        index = RefinementIndex.load(index_dir) if (index_dir / "manifest.json").is_file() else None
        if index is not None and index.num_cells != info.num_cells:
            raise ValueError(f"{index_dir}: index has {index.num_cells} cells but the model {info.num_cells}; "
                             "rebuild it with `pigeon index`")
        if index is not None:
            import json

            from model.formats.rundir import MODEL_FILE

            made_for = json.loads((index_dir / "manifest.json").read_text()).get("model_sha256")
            if made_for is not None and made_for != info.manifest["files"][MODEL_FILE]["sha256"]:
                raise ValueError(f"{index_dir} was built for another model.safetensors (the run was retrained "
                                 f"since): rebuild it with `pigeon index --run {run_dir} --data DATASET`")
        if index is None:
            log.info("%s has no retrieval index: guesses are unrefined (build one with `pigeon index`)", run_dir)
        if text_cue is not None and text_cue is not False and text_cue.enabled:
            from model.text.cue import load_text_cue
            from model.text.engines import engine_for

            kwargs["text_cue"] = load_text_cue(text_cue)
            # one single-threaded engine per core, reading views side by side: onnxruntime's own threads barely
            # help on these small models (4 views: 0.96 s vs 1.68 s per round, alternating, same load)
            n = max(1, min(text_cue.ocr_workers or (os.cpu_count() or 1), 4))
            kwargs["ocr"] = [engine_for(text_cue, threads=1 if n > 1 else 0) for _ in range(n)]
        pred = cls(model, info, index, device, **kwargs)
        if warmup:
            pred.warmup()
        return pred

    def warmup(self) -> None:
        from PIL import Image

        img = Image.new("RGB", (self.info.image_size, self.info.image_size), (120, 140, 160))
        self.predict([img] * max(1, len(self.info.views)))

    # ------------------------------------------------------------------ inference
    def predict(self, views: Sequence[Any], decay_km: float | None = None) -> Prediction:
        """views: the images of one location (paths, bytes, PIL images or arrays), any count >= 1.
        ``decay_km``: the map's score decay (a country map's is far smaller than the world's; see
        ``bot/sites/geoguessr.py``), so the expected-score guess maximises the score the site will give."""
        return self.predict_batch([views], decay_km)[0]

    def score_matrix(self, decay_km: float | None) -> np.ndarray | None:
        """The (C, C) centroid score matrix for a decay, kept per decay."""
        decay = GEOGUESSR_DECAY_KM if decay_km is None else float(decay_km)
        if decay not in self._matrices:
            self._matrices[decay] = cell_score_matrix(self.centroids_deg, decay)
        return self._matrices[decay]

    def predict_batch(self, locations: Iterable[Sequence[Any]], decay_km: float | None = None) -> list[Prediction]:
        import torch

        from model.network import autocast

        t0 = time.perf_counter()
        locations = [list(v) for v in locations]
        if not locations:
            return []
        counts = {len(v) for v in locations}
        if 0 in counts:
            raise PredictError("a location needs at least one view")
        fusion, n_views = self.info.fusion, len(self.info.views)
        if fusion == "concat" and counts != {n_views}:
            raise PredictError(f"this run fuses exactly {n_views} views in heading order "
                               f"({', '.join(map(str, self.info.views))} degrees); got {sorted(counts)} view(s)")
        images = [[load_image(x) for x in views] for views in locations]
        tensors = [torch.stack([self.model.preprocess(img) for img in views]) for views in images]
        t1 = time.perf_counter()
        with torch.inference_mode(), autocast(self.device):
            if len(counts) == 1:
                views = [self.model.embed(torch.stack(tensors).to(self.device))]
            else:  # ragged view counts: embed each location on its own
                views = [self.model.embed(t[None].to(self.device)) for t in tensors]
            emb = torch.cat([fuse_views(v, fusion) for v in views])
            logits = self.model.head(emb)["cell"].float()
            probs = torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float64)
        emb_np = torch.cat([fuse_views(v, RETRIEVAL_FUSION) for v in views]).float().cpu().numpy()
        t2 = time.perf_counter()
        refined = self.index.refine(emb_np, probs, self.centroids_deg) if self.index is not None else None
        t3 = time.perf_counter()
        evidence = [self.read_text(views) for views in images] if self.text_cue is not None else None
        t_text = time.perf_counter()
        out = [self._one(i, probs[i], refined, evidence[i] if evidence else None, decay_km)
               for i in range(len(locations))]
        t4 = time.perf_counter()
        per = len(locations)
        for p in out:
            p.timings_ms = {"decode_ms": (t1 - t0) * 1e3 / per, "network_ms": (t2 - t1) * 1e3 / per,
                            "refine_ms": (t3 - t2) * 1e3 / per, "expected_score_ms": (t4 - t_text) * 1e3 / per,
                            "total_ms": (t4 - t0) * 1e3 / per}
            if evidence is not None:
                p.timings_ms["text_ms"] = (t_text - t3) * 1e3 / per
        return out

    def read_text(self, views: Sequence[Any]):
        """The text cue's evidence from one location's views (full resolution), views numbered in order."""
        from dataclasses import replace

        engines = self.ocr if isinstance(self.ocr, (list, tuple)) else [self.ocr]
        arrays = [np.asarray(load_image(img).convert("RGB"), dtype=np.uint8) for img in views]

        def one_engine(k: int) -> list:  # engine k reads views k, k + n, ...: no engine is used by two threads
            return [replace(r, view=v) for v in range(k, len(arrays), len(engines))
                    for r in engines[k].read(arrays[v])]

        if len(engines) == 1 or len(arrays) == 1:
            per = [one_engine(0)]
        else:
            if self._ocr_pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._ocr_pool = ThreadPoolExecutor(len(engines), thread_name_prefix="ocr")
            per = list(self._ocr_pool.map(one_engine, range(min(len(engines), len(arrays)))))
        reads = sorted((r for rs in per for r in rs), key=lambda r: r.view)
        return self.text_cue.observe(reads)

    def _one(self, i: int, probs: np.ndarray, refined: dict | None, evidence=None,
             decay_km: float | None = None) -> Prediction:
        head = tuple(float(x) for x in self.centroids_deg[int(np.argmax(probs))])
        ref = tuple(float(x) for x in refined["latlon"][i]) if refined is not None else None
        played = play(probs, self.centroids_deg, self.cell_country, self.guess_mode, ref, self.candidates,
                      self.score_matrix(decay_km), self.text_cue, evidence, decay_km)
        probs = played.probs
        order = np.argsort(-probs)[: self.top_k]
        top = [{"cell": int(c), "p": float(probs[c]), "lat": float(self.centroids_deg[c, 0]),
                "lon": float(self.centroids_deg[c, 1]), "country": self.cell_country[c]} for c in order]
        return Prediction(played.guess, head, ref, played.es_point, played.es_value, top, probs, text=played.text)


@dataclass
class Played:
    guess: tuple[float, float]
    es_point: tuple[float, float]
    es_value: float
    probs: np.ndarray
    text: dict[str, Any] | None = None


def play(probs: np.ndarray, centroids_deg: np.ndarray, cell_country: list[str], guess_mode: str,
         refined: tuple[float, float] | None = None, candidates: int = 256, score_matrix: np.ndarray | None = None,
         text_cue=None, evidence=None, decay_km: float | None = None) -> Played:
    """The point one location's guess mode plays, from the head's distribution ``probs`` (C,).

    The expected-score guess searches the top-``candidates`` cell centroids plus the refined point and the head's
    centroid (and, with the text cue, the matched places); with the text cue the distribution is first fused
    with the evidence (:mod:`model.text.cue`) and a confident place match is played as is. ``pigeon eval``
    calls this with and without the evidence on the same rounds. ``decay_km``: the map's score decay (None:
    the world's); ``score_matrix`` must then be the one for that decay, or None."""
    head = tuple(float(x) for x in centroids_deg[int(np.argmax(probs))])
    text, extra, snap = None, [p for p in (refined, head) if p is not None], None
    if text_cue is not None and evidence is not None:
        fused = text_cue.fuse(probs, centroids_deg, cell_country, evidence)
        probs, snap = fused.probs, fused.snap
        extra += [(c.lat, c.lon) for c, p in fused.posteriors if p >= 0.05]
        text = {**evidence.to_dict(), **fused.summary()}
    es_point, es_value = _expected_score_guess(probs, centroids_deg, candidates, score_matrix, extra,
                                               GEOGUESSR_DECAY_KM if decay_km is None else decay_km)
    guess = {"refined": refined or head, "head": head, "expected_score": es_point}[guess_mode]
    if snap is not None:
        guess = snap
    return Played(guess, es_point, es_value, probs, text)


def _expected_score_guess(probs: np.ndarray, centroids_deg: np.ndarray, candidates: int,
                          score_matrix: np.ndarray | None, extra: list[tuple[float, float]],
                          decay_km: float = GEOGUESSR_DECAY_KM):
    """argmax over candidates (the top-M cell centroids and ``extra`` points) of sum_c p(c) score(d(x, c))."""
    if score_matrix is None:
        score_matrix = cell_score_matrix(centroids_deg, decay_km)
    pts, vals = expected_score_guesses(probs, centroids_deg, candidates, score_matrix, decay_km=decay_km,
                                       extra=np.asarray(extra, dtype=np.float64)[None] if extra else None)
    return tuple(float(x) for x in pts[0]), float(vals[0])


SCORE_MATRIX_MAX_CELLS = 8000  # above this the C x C score matrix (float32) is not kept; rows are computed per use


def cell_score_matrix(centroids_deg: np.ndarray, decay_km: float = GEOGUESSR_DECAY_KM) -> np.ndarray | None:
    """score(d(centroid_i, centroid_j)) as a (C, C) float32 matrix, or None for more than SCORE_MATRIX_MAX_CELLS."""
    c = np.asarray(centroids_deg, dtype=np.float64)
    if len(c) > SCORE_MATRIX_MAX_CELLS:
        return None
    return geoguessr_score(pairwise_haversine_km(c, c), decay_km).astype(np.float32)


def expected_score_guesses(probs: np.ndarray, centroids_deg: np.ndarray, candidates: int = 256,
                           score_matrix: np.ndarray | None = None, batch: int = 1024,
                           decay_km: float = GEOGUESSR_DECAY_KM,
                           extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Batched expected-score guesses: probs (N, C) over cells with centroids (C, 2) -> points (N, 2), the
    candidate cell centroid maximising sum_c p(c) score(d(x, c)) among the ``candidates`` most probable cells,
    and those expected scores (N,). ``score_matrix``: :func:`cell_score_matrix` of the centroids when the caller
    keeps one. Memory stays O(batch x C). ``extra`` (N, K, 2): more candidate points per row (the refined point,
    matched places), played where their expected score is higher, as :func:`play` does."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    cent = np.asarray(centroids_deg, dtype=np.float64)
    if score_matrix is None:
        score_matrix = cell_score_matrix(cent, decay_km)
    m = min(candidates, probs.shape[1])
    cand = np.argpartition(-probs, m - 1, axis=1)[:, :m]                        # (N, m) candidate cells
    values = np.empty(cand.shape)
    step = batch if score_matrix is not None else max(1, 1024 // m)
    for s in range(0, len(probs), step):
        pr, cd = probs[s:s + step], cand[s:s + step]
        if score_matrix is not None:  # expected score at every centroid (the matrix is symmetric), then pick
            values[s:s + step] = np.take_along_axis(pr.astype(np.float32) @ score_matrix, cd, 1)
        else:  # too many cells to keep the matrix: score rows of this batch's candidate cells only
            rows, inv = np.unique(cd, return_inverse=True)
            exp_rows = pr @ geoguessr_score(pairwise_haversine_km(cent[rows], cent), decay_km).T   # (B, U)
            values[s:s + step] = np.take_along_axis(exp_rows, inv.reshape(cd.shape), 1)
    best = values.argmax(1)
    r = np.arange(len(probs))
    points, best_values = cent[cand[r, best]], values[r, best]
    if extra is not None and np.size(extra):
        ext = np.asarray(extra, dtype=np.float64).reshape(len(probs), -1, 2)
        for s in range(0, len(probs), batch):
            e = ext[s:s + batch]
            d = pairwise_haversine_km(e.reshape(-1, 2), cent).reshape(len(e), e.shape[1], -1)   # (B, K, C)
            exp_e = np.einsum("bkc,bc->bk", geoguessr_score(d, decay_km), probs[s:s + batch])
            j = exp_e.argmax(1)
            v = exp_e[np.arange(len(e)), j]
            better = v > best_values[s:s + batch]
            points[s:s + batch][better] = e[np.arange(len(e)), j][better]
            best_values[s:s + batch] = np.where(better, v, best_values[s:s + batch])
    return points, best_values
