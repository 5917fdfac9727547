"""Retrieval refinement (docs/method.md §2.8-2.9): location clusters per geocell, prototypes, and top-K cell
refinement.

Build: training locations are grouped by geocell; inside each cell OPTICS on the pairwise haversine matrix
(``metric='precomputed'``) finds location clusters. A cluster's prototype is the mean embedding of its members
(each location's 4 views already averaged). Choices made here: noise points are dropped from clusters, a cell
without any cluster gets one *fallback prototype* (the mean of all its members) so it stays a usable candidate,
and the within-cluster step returns the **nearest** member (the released code takes the farthest; the paper
describes the nearest).

Query: top-K cells of the head's softmax -> nearest prototype (L2) in each -> q = softmax(-d / T) -> score
p_k * q_k -> winner -> nearest member of the winning cluster. If the refined point is more than
``max_refinement_km`` from the head's guess (centroid of the argmax cell), rank by p_k alone instead.

Files (``save``/``load``): prototypes.faiss (the prototype embeddings as a faiss index: an 8-bit
``IndexScalarQuantizer``, one trained range per dimension, for an index made by ``build``, which searches the
decoded values so that a built index and its reloaded copy answer identically; a float32 ``IndexFlatL2`` in
indexes written before, which still load), arrays.npz
(plain arrays, loaded with allow_pickle=False), manifest.json (format "pigeon-index", version, config, counts,
sha256 + size of both files; see :mod:`model.formats.manifest`, which also reads the older shape).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model.formats import manifest as mf
from model.formats.manifest import FormatError
from model.geo.geography import haversine_km, pairwise_haversine_km

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RetrievalConfig:
    optics_min_samples: int = 3       # PIGEON (3, 0.15); PIGEOTTO (100, 0.1)
    optics_xi: float = 0.15
    top_k: int = 5                    # PIGEON K = 5
    temperature: float = 1.6          # PIGEON T = 1.6
    max_refinement_km: float = 1000.0  # PIGEON safety valve
    max_cell_points_for_optics: int = 2000  # larger cells are subsampled for OPTICS (O(n^2) memory)


def _cluster_cell(latlon: np.ndarray, cfg: RetrievalConfig, seed: int) -> np.ndarray:
    """OPTICS labels (n,) for one cell's points; -1 = noise. Small cells form a single cluster 0."""
    from sklearn.cluster import OPTICS

    n = len(latlon)
    if n < max(cfg.optics_min_samples, 2):
        return np.zeros(n, dtype=np.int64)
    if n > cfg.max_cell_points_for_optics:  # cluster a subsample, then attach every point to its nearest sample
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(n, cfg.max_cell_points_for_optics, replace=False))
        sub = _cluster_cell(latlon[pick], cfg, seed)
        nearest = np.argmin(pairwise_haversine_km(latlon, latlon[pick]), axis=1)
        return sub[nearest]
    dist = pairwise_haversine_km(latlon, latlon)
    dist[dist == 0] = 1e-5  # as PIGEON: duplicates must not collapse OPTICS reachability
    np.fill_diagonal(dist, 0.0)
    return OPTICS(min_samples=cfg.optics_min_samples, xi=cfg.optics_xi, metric="precomputed").fit(dist).labels_


@dataclass
class RefinementIndex:
    """Prototypes and their members, grouped by cell.

    proto_emb (P, D) float32, proto_cell (P,), proto_latlon (P, 2) cluster centroid, proto_fallback (P,) bool,
    member_offsets (P+1,) into member_rows, member_rows (M,) rows of the member arrays,
    train_emb (M, D) float32 (int8 values times a per-row scale), train_latlon (M, 2) of the cluster members,
    cell_offsets (C+1,) into the cell-sorted prototype order. ``_codec``: the faiss index prototypes.faiss stores
    (8-bit after ``build``; whatever the file held after ``load``), ``proto_emb`` being its decoded values.
    """

    cfg: RetrievalConfig
    num_cells: int
    proto_emb: np.ndarray
    proto_cell: np.ndarray
    proto_latlon: np.ndarray
    proto_fallback: np.ndarray
    member_offsets: np.ndarray
    member_rows: np.ndarray
    train_emb: np.ndarray
    train_latlon: np.ndarray
    _faiss: object = None  # the search index: IndexFlatL2 over proto_emb, made on first use
    num_locations: int = 0  # training locations the index was built from (members and OPTICS noise)
    _codec: object = None

    # ---------------------------------------------------------------- build
    @classmethod
    def build(cls, emb: np.ndarray, latlon_deg: np.ndarray, cells: np.ndarray, num_cells: int,
              cfg: RetrievalConfig = RetrievalConfig(), seed: int = 330, progress=None) -> "RefinementIndex":
        """emb (N, D) location embeddings (views averaged), latlon_deg (N, 2), cells (N,) geocell labels."""
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        latlon_deg = np.asarray(latlon_deg, dtype=np.float64)
        cells = np.asarray(cells, dtype=np.int64)
        if emb.ndim != 2 or len(emb) != len(latlon_deg) or len(emb) != len(cells) or len(emb) == 0:
            raise FormatError(f"need matching non-empty arrays, got emb {emb.shape}, latlon {latlon_deg.shape}, "
                                 f"cells {cells.shape}")
        if cells.min() < 0 or cells.max() >= num_cells:
            raise FormatError(f"cell labels must lie in [0, {num_cells})")
        order = np.argsort(cells, kind="stable")
        bounds = np.searchsorted(cells[order], np.arange(num_cells + 1))
        p_emb, p_cell, p_ll, p_fb, offsets, rows = [], [], [], [], [0], []
        for c in range(num_cells):
            members = order[bounds[c]:bounds[c + 1]]
            if len(members) == 0:
                continue
            labels = _cluster_cell(latlon_deg[members], cfg, seed + c)
            groups = [members[labels == k] for k in np.unique(labels) if k >= 0]
            fallback = not groups
            if fallback:
                groups = [members]
            for g in groups:
                p_emb.append(emb[g].mean(0))
                p_cell.append(c)
                p_ll.append(_mean_latlon(latlon_deg[g]))
                p_fb.append(fallback)
                rows.append(g)
                offsets.append(offsets[-1] + len(g))
            if progress is not None:
                progress(c + 1, num_cells)
        # Only cluster members are ever searched (``_member_point``): keep their rows, in prototype order, and
        # round their embeddings to int8 with a per-row scale (what the file stores; a quarter of float32), so a
        # built index and its reloaded copy answer identically. Noise points of OPTICS are not members and are
        # dropped.
        # The prototypes likewise: 8-bit codes with a range per dimension (a quarter of float32; 10.6 -> 2.7 MB
        # for the demo's 5,171 prototypes), searched as their decoded values.
        members = np.concatenate(rows).astype(np.int64)
        codec = _prototype_codec(np.stack(p_emb).astype(np.float32))
        obj = cls(cfg, num_cells, codec.reconstruct_n(0, codec.ntotal), np.array(p_cell, np.int64),
                  np.array(p_ll, np.float64), np.array(p_fb, bool), np.array(offsets, np.int64),
                  np.arange(len(members), dtype=np.int64),
                  _dequantize_rows(*_quantize_rows(emb[members])), latlon_deg[members])
        obj.num_locations, obj._codec = len(emb), codec
        return obj

    # ---------------------------------------------------------------- search
    @property
    def cell_offsets(self) -> np.ndarray:
        # prototypes are appended cell by cell, so proto_cell is sorted
        return np.searchsorted(self.proto_cell, np.arange(self.num_cells + 1))

    def _index(self):
        if self._faiss is None:
            import faiss

            # faiss-cpu 1.15.1 defaults to 128000; with 20, batched flat search measured 7-9x faster on 2 cores
            faiss.cvar.distance_compute_blas_threshold = 20
            index = faiss.IndexFlatL2(self.proto_emb.shape[1])
            index.add(self.proto_emb)
            self._faiss = index
        return self._faiss

    def refine(self, query_emb: np.ndarray, cell_probs: np.ndarray, centroids_deg: np.ndarray,
               top_k: int | None = None, temperature: float | None = None,
               max_refinement_km: float | None = None) -> dict[str, np.ndarray]:
        """query_emb (B, D), cell_probs (B, C), centroids_deg (C, 2) cell centroids -> dict with
        latlon (B, 2) refined guesses, cell (B,), candidates (B, K) cells, candidate_scores (B, K),
        fell_back (B,) bool (the safety valve fired: ranked by probability alone)."""
        import faiss

        cfg = self.cfg
        k = min(top_k or cfg.top_k, self.num_cells)
        temp = temperature or cfg.temperature
        cap = cfg.max_refinement_km if max_refinement_km is None else max_refinement_km
        q = np.ascontiguousarray(np.atleast_2d(query_emb), dtype=np.float32)
        probs = np.atleast_2d(np.asarray(cell_probs, dtype=np.float64))
        if q.shape[1] != self.proto_emb.shape[1]:
            raise FormatError(f"query dim {q.shape[1]} != index dim {self.proto_emb.shape[1]}")
        if probs.shape != (len(q), self.num_cells):
            raise FormatError(f"cell_probs shape {probs.shape} != ({len(q)}, {self.num_cells})")
        index, offsets = self._index(), self.cell_offsets
        part = np.argpartition(-probs, k - 1, axis=1)[:, :k] if k < self.num_cells else np.tile(
            np.arange(self.num_cells), (len(q), 1))
        top = np.take_along_axis(part, np.argsort(-np.take_along_axis(probs, part, 1), axis=1), 1)
        out_ll = np.zeros((len(q), 2))
        out_cell = np.zeros(len(q), np.int64)
        centroids_deg = np.asarray(centroids_deg, dtype=np.float64)
        if centroids_deg.shape != (self.num_cells, 2):
            raise FormatError(f"centroids shape {centroids_deg.shape} != ({self.num_cells}, 2)")
        scores = np.zeros((len(q), k))
        fell_back = np.zeros(len(q), bool)
        for b in range(len(q)):
            ids = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in top[b]])
            best_d = np.full(k, np.inf)
            best_p = np.full(k, -1, np.int64)
            if len(ids):
                params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids.astype(np.int64)))
                d2, found = index.search(q[b:b + 1], len(ids), params=params)
                for dist2, p in zip(d2[0], found[0]):
                    if p < 0:
                        continue
                    slot = int(np.nonzero(top[b] == self.proto_cell[p])[0][0])
                    if dist2 < best_d[slot]:  # results come sorted, so the first hit per cell is its nearest
                        best_d[slot], best_p[slot] = dist2, p
            s = -np.sqrt(best_d)
            s[~np.isfinite(s)] = -1e5  # a cell without prototypes can only win by probability
            qk = np.exp((s - s.max()) / temp)
            qk /= qk.sum()
            final = probs[b, top[b]] * qk
            scores[b] = final
            win = int(np.argmax(final))
            initial = centroids_deg[top[b, 0]]  # the unrefined head guess
            refined = self._point(q[b], best_p[win], centroids_deg[top[b, win]])
            if haversine_km(refined[0], refined[1], initial[0], initial[1]) > cap:
                win, fell_back[b] = 0, True
                refined = self._point(q[b], best_p[0], initial)
            out_ll[b], out_cell[b] = refined, top[b, win]
        return {"latlon": out_ll, "cell": out_cell, "candidates": top, "candidate_scores": scores,
                "fell_back": fell_back}

    def _point(self, q: np.ndarray, proto: int, default: np.ndarray) -> np.ndarray:
        return self._member_point(q, proto) if proto >= 0 else np.asarray(default, dtype=np.float64)

    def _member_point(self, q: np.ndarray, proto: int) -> np.ndarray:
        """Coordinates of the member of ``proto``'s cluster whose embedding is nearest to ``q``."""
        rows = self.member_rows[self.member_offsets[proto]:self.member_offsets[proto + 1]]
        if len(rows) == 1:
            return self.train_latlon[rows[0]]
        d = ((self.train_emb[rows] - q) ** 2).sum(1)
        return self.train_latlon[rows[int(np.argmin(d))]]

    # ---------------------------------------------------------------- files
    def save(self, out_dir: str | Path, extra: dict | None = None) -> Path:
        import faiss

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # an index assembled by hand (no codec) keeps its float32 prototypes as they are
        codec = self._codec if self._codec is not None else self._index()
        faiss.write_index(codec, str(out / "prototypes.faiss"))
        np.savez(out / "arrays.npz", proto_cell=self.proto_cell, proto_latlon=self.proto_latlon,
                 proto_fallback=self.proto_fallback, member_offsets=self.member_offsets,
                 member_rows=self.member_rows, train_latlon=self.train_latlon,
                 **dict(zip(("train_emb", "train_emb_scale"), _quantize_rows(self.train_emb))))
        manifest = {"config": asdict(self.cfg), "num_cells": self.num_cells,
                    "num_prototypes": int(len(self.proto_emb)), "num_fallback": int(self.proto_fallback.sum()),
                    "num_locations": int(self.num_locations or len(self.train_emb)),
                    "num_members": int(len(self.train_emb)), "dim": int(self.proto_emb.shape[1]),
                    **(extra or {})}
        mf.write_manifest(out, "index", SCHEMA_VERSION, manifest, ("prototypes.faiss", "arrays.npz"))
        return out

    @classmethod
    def load(cls, in_dir: str | Path, cfg: RetrievalConfig | None = None) -> "RefinementIndex":
        import faiss

        d = Path(in_dir)
        manifest = mf.read_manifest(d, "index", SCHEMA_VERSION,
                                    hint="; build it with `pigeon index --run RUN --data DIR`")
        mf.verify_files(d, manifest, hint="; rebuild the index")
        index = faiss.read_index(str(d / "prototypes.faiss"))
        with np.load(d / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        proto_emb = index.reconstruct_n(0, index.ntotal)
        cfg = cfg or RetrievalConfig(**manifest["config"])
        obj = cls(cfg, int(manifest["num_cells"]), proto_emb, arrays["proto_cell"], arrays["proto_latlon"],
                  arrays["proto_fallback"], arrays["member_offsets"], arrays["member_rows"],
                  _member_embeddings(arrays), arrays["train_latlon"],
                  num_locations=int(manifest.get("num_locations", len(arrays["train_emb"]))))
        obj._codec = index
        return obj


def _prototype_codec(proto_emb: np.ndarray):
    """An 8-bit faiss ``IndexScalarQuantizer`` (L2, one trained range per dimension) holding ``proto_emb``."""
    import faiss

    codec = faiss.IndexScalarQuantizer(proto_emb.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
    codec.train(proto_emb)
    codec.add(proto_emb)
    return codec


def _quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantisation with one scale per row: x (M, D) -> (int8 (M, D), scale (M,) float32), x ~
    q * scale. Quantising a dequantised array gives the same int8 values back, so saving is idempotent."""
    x = np.asarray(x, dtype=np.float32)
    scale = (np.abs(x).max(1) / 127.0 if x.size else np.zeros(len(x))).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def _dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * np.asarray(scale, dtype=np.float32)[:, None]


def _member_embeddings(arrays: dict) -> np.ndarray:
    """The members' embeddings as float32: int8 + per-row scale, or float16 in indexes written before that."""
    if "train_emb_scale" in arrays:
        return _dequantize_rows(arrays["train_emb"], arrays["train_emb_scale"])
    return arrays["train_emb"].astype(np.float32)


def _mean_latlon(latlon_deg: np.ndarray) -> tuple[float, float]:
    from model.geo.geography import spherical_centroid

    lat, lon = spherical_centroid(latlon_deg[:, 0], latlon_deg[:, 1])
    return float(lat), float(lon)
