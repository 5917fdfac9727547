"""Synthetic world render throughput: locations/s of ``render_world`` (4 views at the default 512 px, JPEG q90).

The geodata is loaded once before timing (its load time is reported apart). Each repeat renders
``--locations`` locations into a fresh temporary folder with ``--workers`` processes; the timed span is the
whole ``render_world`` call: sampling, bulk geodata lookups, drawing in the pool, writing JPEGs, CSV and
manifest.
A single-process drawing rate is measured too. The machine may be shared: the 1-minute load average before
and after each run is recorded next to the figures, and so is the drawing CPU time per location (summed
over the worker processes), from which ``draw_capacity_locations_per_s_on_idle_cores`` = workers / CPU time
follows. Target: >= 40
locations/s on the 2-core CI machine.
Usage: ``python benchmarks/bench_world.py [--locations 400] [--workers 2] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import peak_rss_mib, write  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=400)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np

    from model.geo import geodata
    from world.build import render_scenes, render_world
    from world.config import load_world_config
    from world.sampler import sample_locations
    from world.scene import build_scenes

    cfg = load_world_config(overrides=[f"render.image_size={args.size}"])
    t = time.perf_counter()
    geo = geodata.load()
    lat, lon, _ = sample_locations(geo, cfg.sampler, 16, np.random.default_rng(0))  # loads every layer
    build_scenes(geo, lat, lon, 0, cfg.render, np.random.default_rng(0))
    load_s = time.perf_counter() - t

    runs, loads, draw_cpu, draw_wall, lookup = [], [], [], [], []
    for rep in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            before = os.getloadavg()[0]
            stats: dict = {}
            t = time.perf_counter()
            render_world(
                Path(tmp) / "ds", rep, args.locations, cfg, workers=args.workers, geo=geo, stats=stats
            )
            runs.append(time.perf_counter() - t)
            draw_cpu.append(stats["draw_cpu_s"])
            draw_wall.append(stats["draw_s"])
            lookup.append(stats["lookup_s"])
            loads.append((before, os.getloadavg()[0]))
            print(f"repeat {rep}: {args.locations / runs[-1]:.1f} locations/s", flush=True)

    scenes, _ = build_scenes(geo, lat, lon, 0, cfg.render, np.random.default_rng(1))
    with tempfile.TemporaryDirectory() as tmp:
        render_scenes(scenes[:2], cfg.render, Path(tmp), args.size)  # warm caches (noise, fonts)
        t = time.perf_counter()
        render_scenes(scenes, cfg.render, Path(tmp), args.size)
        single = len(scenes) / (time.perf_counter() - t)

    med = statistics.median(runs)
    cpu_per_loc = statistics.median(draw_cpu) / args.locations
    write(
        "world",
        {
            "what": f"render_world: {args.locations} locations x {len(cfg.render.views)} views, "
            f"{args.size} px, "
            f"{args.workers} worker process(es), timed end to end with geodata preloaded",
            "locations_per_s": round(args.locations / med, 2),
            "views_per_s": round(args.locations * len(cfg.render.views) / med, 1),
            "median_s": round(med, 3),
            "runs_s": [round(r, 3) for r in runs],
            "single_process_locations_per_s": round(single, 2),
            "lookup_s_median": round(statistics.median(lookup), 3),
            "draw_s_median": round(statistics.median(draw_wall), 3),
            # CPU seconds the drawing processes spent per location: the cost whatever else shares the cores
            "draw_cpu_ms_per_location": round(1000 * cpu_per_loc, 1),
            "draw_capacity_locations_per_s_on_idle_cores": round(args.workers / cpu_per_loc, 1),
            "geodata_load_s": round(load_s, 2),
            "load_average_1min_before_after": [[round(a, 2), round(b, 2)] for a, b in loads],
            "workers": args.workers,
            "image_size": args.size,
            "target_locations_per_s": 40,
            "peak_rss_mib_parent": round(peak_rss_mib(), 1),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
