"""Refinement cost per query with 100,000 prototypes on CPU (target: under 5 ms per query).

Synthetic data of the real shapes: 100k prototypes of dim 256 (the demo backbone's width is smaller; ViT-L is 1024,
measured too), 20k cells, top-K = 5, one member list per prototype. Writes benchmarks/results/retrieval.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import peak_rss_mib, write  # noqa: E402
from model.retrieval import RefinementIndex, RetrievalConfig  # noqa: E402


def make_index(num_protos: int, dim: int, num_cells: int, seed: int = 0) -> RefinementIndex:
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.integers(0, num_cells, num_protos))
    emb = rng.standard_normal((num_protos, dim)).astype(np.float32)
    latlon = np.column_stack([rng.uniform(-60, 70, num_protos), rng.uniform(-180, 180, num_protos)])
    # one member per prototype keeps the build cheap; the query cost depends on prototypes per candidate cell
    return RefinementIndex(RetrievalConfig(), num_cells, emb, cells, latlon, np.zeros(num_protos, bool),
                           np.arange(num_protos + 1), np.arange(num_protos), emb, latlon)


def bench(dim: int, num_protos: int = 100_000, num_cells: int = 20_000, queries: int = 200) -> dict:
    idx = make_index(num_protos, dim, num_cells)
    rng = np.random.default_rng(1)
    centroids = np.column_stack([rng.uniform(-60, 70, num_cells), rng.uniform(-180, 180, num_cells)])
    q = rng.standard_normal((queries, dim)).astype(np.float32)
    probs = rng.dirichlet(np.full(num_cells, 0.05), queries)
    idx.refine(q[:2], probs[:2], centroids)  # warm-up (builds the faiss index)
    per = []
    for i in range(queries):
        t = time.perf_counter()
        idx.refine(q[i:i + 1], probs[i:i + 1], centroids)
        per.append(time.perf_counter() - t)
    t = time.perf_counter()
    idx.refine(q, probs, centroids)
    batch = time.perf_counter() - t
    return {"dim": dim, "prototypes": num_protos, "cells": num_cells, "top_k": 5,
            "per_query_median_ms": float(np.median(per) * 1e3), "per_query_p90_ms": float(np.quantile(per, 0.9) * 1e3),
            "batched_ms_per_query": batch / queries * 1e3}


if __name__ == "__main__":
    runs = [bench(256), bench(1024)]
    write("retrieval", {"target_ms": 5.0, "runs": runs, "peak_rss_mib": peak_rss_mib(),
                        "meets_target": all(r["per_query_median_ms"] < 5.0 for r in runs)})
