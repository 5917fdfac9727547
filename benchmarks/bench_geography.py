"""Speed of model.geo.geography's hot paths (numpy, CPU).

Writes benchmarks/results/geography.json with the median of 5 runs per case and prints it.
Run: python benchmarks/bench_geography.py
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from model.geo import geography as geo

RUNS = 5
RESULTS = Path(__file__).resolve().parent / "results" / "geography.json"


def _points(rng: np.random.Generator, n: int) -> np.ndarray:
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return np.stack([lat, rng.uniform(-180.0, 180.0, n)], axis=1)


def _median_s(fn: Callable[[], object]) -> float:
    fn()  # warm-up: page in the output buffers once
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> dict:
    rng = np.random.default_rng(0)
    a, b = _points(rng, 2000), _points(rng, 20000)
    p, q = _points(rng, 100_000), _points(rng, 100_000)
    pair_s = _median_s(lambda: geo.pairwise_haversine_km(a, b))
    hav_s = _median_s(lambda: geo.haversine_km(p[:, 0], p[:, 1], q[:, 0], q[:, 1]))
    result = {
        "runs": RUNS,
        "statistic": "median",
        "pairwise_haversine_km_2000x20000_s": pair_s,
        "pairwise_haversine_km_Mpairs_per_s": 2000 * 20000 / pair_s / 1e6,
        "haversine_km_100k_s": hav_s,
        "haversine_km_Mpairs_per_s": 100_000 / hav_s / 1e6,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
