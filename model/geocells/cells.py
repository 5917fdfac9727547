"""Semantic geocells (PIGEON, docs/method.md §2.2-2.3): the classes of the geocell head.

Pipeline (``build_geocells``), all on planar lon/lat degrees like PIGEON:

1. Initial cells = approximate admin-2 areas: GeoNames admin-2 labels inside real admin-1 polygons, the
   label polygons being unions of the places' Voronoi regions clipped to the admin-1 polygon (worldwide
   admin-2 polygons are not available offline; details in ``model/geocells/_initial.py`` and docs/geocells.md).
2. Fusing cells below MIN points with neighbours, within the admin-1 area first, then within the country,
   never across countries (``model/geocells/_fuse.py``).
3. Splitting cells above MAX points with OPTICS passes + Voronoi tessellation clipped to the parent shape,
   plus PIGEON's "dirty split" clean-up (``model/geocells/_split.py``).
4. Export: one row per cell, row order = class id, centroid = spherical mean of the cell's training points.

Cells that can be neither fused nor split are kept and flagged ``isolated`` with a reason. ``--naive``
builds the rectangular baseline instead (``NaiveCell``: boxes halved along the longer side until <= MAX).
``load_geocells(dir)`` reads an exported directory back and assigns new coordinates to cells.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box

from model.geocells._geom import WorkCell
from model.geocells.io import cells_to_wkt, now_utc, read_cells_dir, read_points_csv, versions, write_cells_dir
from model.config import config_to_dict
from model.geo.geography import spherical_centroid, validate_latlon

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeocellConfig:
    """Geocell construction settings; defaults are PIGEON's Street View constants (configs/geocells.toml)."""

    method: Literal["semantic", "naive"] = "semantic"
    min_cell_size: int = 30  # MIN_CELL_SIZE, training points
    max_cell_size: int = 60  # MAX_CELL_SIZE
    # OPTICS (min_samples, xi) passes applied in order (PIGEOTTO scale: (300,0.05),(400,0.005),(1000,0.0001))
    optics_passes: tuple[tuple[int, float], ...] = ((8, 0.05), (10, 0.025), (15, 0.015))
    seed: int = 330  # picks which small cell fuses next
    neighbour_scale: float = 1.01  # shapes are scaled about their centre so touching cells overlap
    enlarge_factor: float = 2.0  # last-resort neighbour search: scaled shape enlarged this much more
    dirty_split_buffer_deg: float = 0.01  # buffer when handing detached split parts to a sibling
    wkt_precision: int = 6  # decimals of exported polygon coordinates (1e-6 deg ~ 0.1 m)
    simplify_deg: float = 0.0  # optional topology-preserving simplification of exported polygons
    # halve cells that no OPTICS pass can split by straight median cuts (false: leave them oversized and
    # isolated, as the released PIGEON code does)
    bisect_unsplittable: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.min_cell_size <= self.max_cell_size:
            raise ValueError(f"need 1 <= min_cell_size <= max_cell_size, got {self.min_cell_size}, "
                             f"{self.max_cell_size}")
        if not self.optics_passes:
            raise ValueError("optics_passes must list at least one (min_samples, xi) pair")
        for ms, xi in self.optics_passes:
            if ms < 2 or not 0 < xi < 1:
                raise ValueError(f"optics pass ({ms}, {xi}): need min_samples >= 2 and 0 < xi < 1")
        if self.neighbour_scale < 1 or self.enlarge_factor < 1:
            raise ValueError("neighbour_scale and enlarge_factor must be >= 1")
        if self.dirty_split_buffer_deg < 0 or self.simplify_deg < 0 or not 0 <= self.wkt_precision <= 15:
            raise ValueError("dirty_split_buffer_deg and simplify_deg must be >= 0, wkt_precision in 0..15")


@dataclass
class GeocellBuild:
    """Result of a build: ``table`` (C rows, row = class id), ``polygons`` (C,), ``assignment`` (N,) ids."""

    table: pd.DataFrame
    polygons: list
    assignment: np.ndarray
    point_country: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


def build_geocells(lat_deg: np.ndarray, lon_deg: np.ndarray, cfg: GeocellConfig = GeocellConfig(),
                   geodata: Any = None) -> GeocellBuild:
    """Semantic geocells for training points (N,) degrees. ``geodata`` defaults to ``model.geo.geodata.load()``."""
    # imported here so that load_geocells() (the bot's path) never pays for scikit-learn and scipy
    from model.geocells._fuse import fuse_small_cells
    from model.geocells._initial import annotate_points, initial_cells
    from model.geocells._split import split_large_cells

    lat, lon = validate_latlon(np.asarray(lat_deg).reshape(-1), np.asarray(lon_deg).reshape(-1))
    if len(lat) == 0:
        raise ValueError("no training points to build geocells from")
    if geodata is None:
        from model.geo import geodata as geodata_module

        geodata = geodata_module.load()
    lonlat = np.c_[lon, lat]
    times, t0 = {}, time.perf_counter()
    country, area, areas = annotate_points(geodata, lonlat)
    times["annotate_s"] = time.perf_counter() - t0
    cells = initial_cells(geodata, lonlat, country, area, areas)
    times["initial_cells_s"] = time.perf_counter() - t0 - sum(times.values())
    fused = fuse_small_cells(cells, cfg.min_cell_size, cfg.seed, cfg.neighbour_scale, cfg.enlarge_factor)
    times["fuse_s"] = time.perf_counter() - t0 - sum(times.values())
    final = split_large_cells(fused, lonlat, cfg.min_cell_size, cfg.max_cell_size, cfg.optics_passes,
                              cfg.dirty_split_buffer_deg, cfg.bisect_unsplittable)
    times["split_s"] = time.perf_counter() - t0 - sum(times.values())
    final.sort(key=lambda c: (c.country, c.admin1, c.name, int(c.points[0]) if c.size else -1))
    result = _finalise(final, lat, lon, country)
    result.stats.update(initial_cells=len(cells), fused_cells=len(fused), stage_times=times)
    return result


def naive_cells(lat_deg: np.ndarray, lon_deg: np.ndarray, max_size: int) -> list[WorkCell]:
    """PIGEON's NaiveCell baseline: boxes halved at the midpoint of their points' longer extent.

    The exported rectangles are the halves of the parent rectangle (starting from the whole globe), so the
    cells tile the map; a box whose points all coincide cannot be halved and is marked 'unsplittable'.
    """
    out: list[WorkCell] = []
    stack = [((-180.0, -90.0, 180.0, 90.0), np.arange(len(lat_deg)))]
    while stack:
        (x0, y0, x1, y1), idx = stack.pop()
        lat, lon = lat_deg[idx], lon_deg[idx]
        lat_span, lon_span = np.ptp(lat), np.ptp(lon)
        if len(idx) <= max_size or (lat_span == 0 and lon_span == 0):
            reason = "" if len(idx) <= max_size else "unsplittable"
            out.append(WorkCell(f"naive-{len(out)}", "", "", box(x0, y0, x1, y1), idx, reason))
            continue
        if lat_span > lon_span:
            t = (lat.min() + lat.max()) / 2
            lower = lat < t
            halves = [((x0, y0, x1, t), idx[lower]), ((x0, t, x1, y1), idx[~lower])]
        else:
            t = (lon.min() + lon.max()) / 2
            lower = lon < t
            halves = [((x0, y0, t, y1), idx[lower]), ((t, y0, x1, y1), idx[~lower])]
        stack.extend(reversed(halves))  # depth first, lower half first: stable class ids
    return out


def build_naive_geocells(lat_deg: np.ndarray, lon_deg: np.ndarray, cfg: GeocellConfig = GeocellConfig()
                         ) -> GeocellBuild:
    """Naive rectangular geocells (the '- semantic geocells' ablation); needs no geodata."""
    lat, lon = validate_latlon(np.asarray(lat_deg).reshape(-1), np.asarray(lon_deg).reshape(-1))
    if len(lat) == 0:
        raise ValueError("no training points to build geocells from")
    cells = naive_cells(lat, lon, cfg.max_cell_size)
    return _finalise(cells, lat, lon, np.full(len(lat), "", dtype=object))


def _finalise(cells: list[WorkCell], lat: np.ndarray, lon: np.ndarray, country: np.ndarray) -> GeocellBuild:
    """Table + assignment for cells in their final (class id) order."""
    assignment = np.full(len(lat), -1, dtype=np.int64)
    rows = []
    for cid, c in enumerate(cells):
        if (assignment[c.points] >= 0).any():
            raise RuntimeError(f"geocell construction bug: points of cell {c.name!r} already assigned")
        assignment[c.points] = cid
        clat, clon = spherical_centroid(lat[c.points], lon[c.points])
        rows.append({"cell_id": cid, "name": c.name, "country": c.country, "admin1": c.admin1, "size": c.size,
                     "lat": round(clat, 6), "lon": round(clon, 6), "isolated": bool(c.reason),
                     "isolated_reason": c.reason})
    if (assignment < 0).any():
        raise RuntimeError(f"geocell construction bug: {int((assignment < 0).sum())} points lost")
    table = pd.DataFrame(rows)
    sizes = table["size"].to_numpy()
    reasons = table.loc[table["isolated"], "isolated_reason"].value_counts().to_dict()
    stats = {"cells": len(table), "points": len(lat), "isolated": int(table["isolated"].sum()),
             "isolated_by_reason": {str(k): int(v) for k, v in reasons.items()},
             "isolated_points": int(sizes[table["isolated"].to_numpy()].sum()),
             "size_min": int(sizes.min()), "size_median": float(np.median(sizes)), "size_max": int(sizes.max())}
    return GeocellBuild(table, [c.shape for c in cells], assignment, country, stats)


def build_geocells_dir(points_csv: str | Path, out_dir: str | Path, cfg: GeocellConfig = GeocellConfig(),
                       geodata: Any = None) -> GeocellBuild:
    """Read training points from a CSV, build geocells (``cfg.method``) and export them to ``out_dir``."""
    points = read_points_csv(points_csv)
    t0 = time.perf_counter()
    provenance = {}
    if cfg.method == "naive":
        result = build_naive_geocells(points.lat_deg, points.lon_deg, cfg)
    else:
        if geodata is None:
            from model.geo import geodata as geodata_module

            geodata = geodata_module.load()
        result = build_geocells(points.lat_deg, points.lon_deg, cfg, geodata)
        provenance = _geodata_hashes(geodata)
    build_s = time.perf_counter() - t0
    table = result.table.copy()
    table["polygon"] = cells_to_wkt(result.polygons, cfg.wkt_precision, cfg.simplify_deg)
    assign = pd.DataFrame({"row": points.rows})
    if points.ids is not None:
        assign["id"] = points.ids
    assign["lat"], assign["lon"] = points.lat_deg, points.lon_deg
    assign["country"], assign["cell_id"] = result.point_country, result.assignment
    manifest = {"method": cfg.method, "created_utc": now_utc(), "config": config_to_dict(cfg),
                "input": {"path": str(points.path), "sha256": points.sha256, "rows": points.total_rows,
                          "train_rows": len(points.rows)},
                "counts": {k: v for k, v in result.stats.items() if k != "stage_times"},
                "time_s": {"build": round(build_s, 3),
                           **{k: round(v, 3) for k, v in result.stats.get("stage_times", {}).items()}},
                "geodata_sha256": provenance, "versions": versions()}
    write_cells_dir(Path(out_dir), table, assign, manifest)
    return result


_GEODATA_FILES = ("countries.csv", "countries.npz", "admin1.csv", "admin1.npz", "places.csv")


def _geodata_hashes(gd: Any) -> dict[str, str]:
    """sha256 of the geodata files a semantic build reads, as recorded by the geodata fetch manifest."""
    recorded = {}
    for step in getattr(gd, "manifest", {}).get("steps", {}).values():
        for path, rec in step.get("outputs", {}).items():
            if Path(path).name in _GEODATA_FILES:
                recorded[path] = rec.get("sha256", "")
    return dict(sorted(recorded.items()))


class Geocells:
    """Loaded geocells: ``table`` (C rows), ``polygons`` (C,) shapely, ``centroids_deg`` (C, 2) lat/lon."""

    def __init__(self, table: pd.DataFrame, polygons: np.ndarray, manifest: dict) -> None:
        self.table = table
        self.polygons = polygons
        self.manifest = manifest
        self.centroids_deg = table[["lat", "lon"]].to_numpy(dtype=np.float64)
        self._tree: shapely.STRtree | None = None

    def __len__(self) -> int:
        return len(self.table)

    @property
    def names(self) -> list[str]:
        return self.table["name"].astype(str).tolist()

    def assign(self, lat_deg: Any, lon_deg: Any) -> np.ndarray:
        """Cell id (N,) int64 per point: the first (lowest id) polygon covering it, else the nearest polygon.

        Nearest is measured in planar degrees (docs/method.md §2.3); ties go to the lowest id.
        """
        lat, lon = validate_latlon(np.asarray(lat_deg, dtype=np.float64).reshape(-1),
                                   np.asarray(lon_deg, dtype=np.float64).reshape(-1))
        if self._tree is None:
            self._tree = shapely.STRtree(self.polygons)
        pts = shapely.points(lon, lat)
        out = np.full(len(pts), len(self), dtype=np.int64)
        src, hit = self._tree.query(pts, predicate="intersects")
        np.minimum.at(out, src, hit)
        todo = np.flatnonzero(out == len(self))
        if len(todo):
            src, hit = self._tree.query_nearest(pts[todo], all_matches=True)
            np.minimum.at(out, todo[src], hit)
        return out


def load_geocells(cells_dir: str | Path, verify: bool = True) -> Geocells:
    """Load an exported geocell directory, checking geocells.csv against manifest.json."""
    table, polygons, manifest = read_cells_dir(cells_dir, verify=verify)
    return Geocells(table, polygons, manifest)

