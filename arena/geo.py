"""Map layers for the guess map, offline: town labels (GeoNames places by population) and admin-1 borders.

Read lazily from the geodata folder (``<data>/geodata``: ``places.csv`` with lat, lon, name, population;
``admin1.npz`` in the ring/polygon/geometry offsets format of ``model/geo/io.py``) the first time a map zooms
in, and served per map view (bounding box and zoom) so the browser never loads the whole set.
"""

from __future__ import annotations

import csv
import logging
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_ZOOM = 4           # labels and borders appear from this map zoom on
MAX_PLACES = 120
MAX_POINTS = 60_000    # border vertices per answer


def default_geodata_dir() -> Path:
    from model.paths import data_dir  # the path rule only

    return data_dir() / "geodata"


class GeoLayers:
    """Town labels and admin-1 border lines inside a map view. Thread-safe lazy loading."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_geodata_dir()
        self._lock = threading.Lock()
        self._places: tuple[np.ndarray, np.ndarray, np.ndarray, list[str]] | None = None
        self._rings: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _file(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: build the geodata with `make setup`")
        return path

    def _load_places(self):
        with self._lock:
            if self._places is None:
                lat, lon, pop, names = [], [], [], []
                with open(self._file("places.csv"), newline="", encoding="utf-8") as f:
                    for row in csv.DictReader(f):
                        try:
                            lat.append(float(row["lat"]))
                            lon.append(float(row["lon"]))
                            pop.append(float(row["population"] or 0))
                        except (KeyError, ValueError):
                            continue
                        names.append(row["name"])
                order = np.argsort(-np.asarray(pop))  # most populous first
                self._places = (np.asarray(lat)[order], np.asarray(lon)[order], np.asarray(pop)[order],
                                [names[i] for i in order])
                log.info("map labels: %d places", len(names))
            return self._places

    def _load_rings(self):
        with self._lock:
            if self._rings is None:
                with np.load(self._file("admin1.npz")) as z:
                    coords, ring_off = z["coords"], z["ring_offsets"]
                starts, ends = ring_off[:-1], ring_off[1:]
                keep = ends - starts >= 2
                starts, ends = starts[keep], ends[keep]
                lo = np.minimum.reduceat(coords, starts, axis=0)
                hi = np.maximum.reduceat(coords, starts, axis=0)
                self._rings = (coords, np.stack([starts, ends], 1), np.concatenate([lo, hi], 1))
            return self._rings

    def places(self, south: float, west: float, north: float, east: float, zoom: float) -> list[list]:
        """[[lat, lon, name, population], ...]: the most populous places in the view (none below MIN_ZOOM)."""
        if zoom < MIN_ZOOM:
            return []
        lat, lon, pop, names = self._load_places()
        inside = np.flatnonzero((lat >= south) & (lat <= north) & (lon >= west) & (lon <= east))
        limit = int(min(MAX_PLACES, 30 + 15 * (zoom - MIN_ZOOM)))
        return [[round(float(lat[i]), 4), round(float(lon[i]), 4), names[i], int(pop[i])] for i in inside[:limit]]

    def admin1(self, south: float, west: float, north: float, east: float, zoom: float) -> list[list[list[float]]]:
        """Admin-1 border rings crossing the view as [[lat, lon], ...] lines, thinned to about two screen
        pixels at ``zoom`` (none below MIN_ZOOM)."""
        if zoom < MIN_ZOOM:
            return []
        coords, spans, boxes = self._load_rings()
        hit = np.flatnonzero((boxes[:, 0] <= east) & (boxes[:, 2] >= west) & (boxes[:, 1] <= north)
                             & (boxes[:, 3] >= south))
        tol = 2 * 360.0 / (256 * 2 ** zoom)  # degrees per two pixels at this zoom
        lines, total = [], 0
        for i in hit:
            a, b = spans[i]
            ring = np.round(coords[a:b] / tol) * tol
            moved = np.any(np.diff(ring, axis=0) != 0, axis=1)
            ring = ring[np.concatenate([[True], moved])]
            if len(ring) < 2:
                continue
            total += len(ring)
            if total > MAX_POINTS:
                break
            lines.append([[round(float(y), 4), round(float(x), 4)] for x, y in ring])
        return lines
