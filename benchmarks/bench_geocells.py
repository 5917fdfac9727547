"""Geocells for 100,000 training points: build time (CSV -> exported directory), peak memory, cell stats.

Points are GeoNames places (model.geo.geodata places, seed 0) drawn uniformly or weighted by population, each
jittered by a 0.01 deg (~1 km) Gaussian: the uniform draw spreads like Street View coverage, the
population draw piles points into big cities (more splitting). Each workload runs once cold (first build
in the process: geodata layers, place lookups and imports load) and ``--repeat`` times warm; the JSON holds
the warm median of wall time and of CPU time (the machine is shared, so wall time varies with other
jobs). Peak memory is the process's max RSS (``resource.getrusage``), which includes the geodata.
Writes benchmarks/results/geocells.json. Run: python benchmarks/bench_geocells.py (needs `make setup`).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import peak_rss_mib, write
from model.geo import geodata
from model.geocells.cells import GeocellConfig, build_geocells_dir, load_geocells

N_POINTS = 100_000
TARGET_S = 120.0


def sample_csv(path: Path, weighting: str, n: int = N_POINTS, seed: int = 0) -> Path:
    places = geodata.load().places
    rng = np.random.default_rng(seed)
    p = None
    if weighting == "population":
        pop = np.nan_to_num(places["population"].to_numpy(dtype=np.float64), nan=1000.0)
        p = pop / pop.sum()
    rows = rng.choice(len(places), size=n, p=p)
    lat = np.clip(places["lat"].to_numpy()[rows] + rng.normal(0, 0.01, n), -90, 90)
    lon = (places["lon"].to_numpy()[rows] + rng.normal(0, 0.01, n) + 180) % 360 - 180
    pd.DataFrame({"id": np.arange(n), "lat": lat.round(6), "lon": lon.round(6)}).to_csv(path, index=False)
    return path


def quality(out: Path) -> dict:
    """How well polygons reproduce the training labels (share of points covered by their own cell)."""
    cells = load_geocells(out)
    assign = pd.read_csv(out / "assignments.csv")
    labels = assign["cell_id"].to_numpy()
    covered = shapely.covers(cells.polygons[labels], shapely.points(assign["lon"], assign["lat"]))
    return {"assign_agrees_with_training_labels": round(float((cells.assign(assign["lat"], assign["lon"])
                                                                == labels).mean()), 5),
            "points_inside_own_polygon": round(float(covered.mean()), 5),
            "geocells_csv_mib": round((out / "geocells.csv").stat().st_size / 2**20, 1)}


def cpu_s() -> float:
    """User + system CPU seconds of this process: steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_workload(csv: Path, cfg: GeocellConfig, repeat: int, tmp: Path) -> dict:
    times, cpu, result = [], [], None
    for k in range(repeat + 1):
        t, c = time.perf_counter(), cpu_s()
        result = build_geocells_dir(csv, tmp / f"run{k}", cfg)
        times.append(time.perf_counter() - t)
        cpu.append(cpu_s() - c)
        print(f"  {cfg.method} run {k} ({'cold' if k == 0 else 'warm'}): {times[-1]:.1f} s wall, "
              f"{cpu[-1]:.1f} s CPU", flush=True)
    stats = {k: v for k, v in result.stats.items() if k != "stage_times"}
    out = {"cold_s": round(times[0], 2), "cold_cpu_s": round(cpu[0], 2),
           "warm_median_s": round(statistics.median(times[1:]), 2),
           "warm_median_cpu_s": round(statistics.median(cpu[1:]), 2), "warm_runs": repeat,
           "warm_times_s": [round(t, 2) for t in times[1:]], "under_target": max(times) < TARGET_S, **stats}
    if "stage_times" in result.stats:
        out["stage_times_last_run_s"] = {k: round(v, 2) for k, v in result.stats["stage_times"].items()}
    out.update(quality(tmp / f"run{repeat}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="warm runs per workload (median reported)")
    args = parser.parse_args()
    t = time.perf_counter()
    gd = geodata.load()
    _ = gd.countries, gd.admin1, gd.places
    load_s = time.perf_counter() - t
    rss_before = peak_rss_mib()
    results = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for weighting in ("uniform", "population"):
            print(f"semantic, {N_POINTS} points, {weighting} places", flush=True)
            csv = sample_csv(tmp / f"{weighting}.csv", weighting)
            results[f"semantic_{weighting}"] = run_workload(csv, GeocellConfig(), args.repeat, tmp / weighting)
        print("naive, uniform", flush=True)
        results["naive_uniform"] = run_workload(tmp / "uniform.csv", GeocellConfig(method="naive"), args.repeat,
                                                tmp / "naive")
    write("geocells", {"points": N_POINTS, "target_s": TARGET_S, "geodata_load_s": round(load_s, 2),
                       "peak_rss_mib_after_geodata_load": round(rss_before, 1),
                       "peak_rss_mib": round(peak_rss_mib(), 1), "workloads": results,
                       "note": "2-core machine shared with other jobs; *_s = wall clock, *_cpu_s = process CPU time"})


if __name__ == "__main__":
    main()
