"""Geometry helpers shared by geocell initialisation and splitting (planar lon/lat degrees, shapely 2).

All coordinates here are planar (x = lon_deg, y = lat_deg), as in PIGEON: Voronoi diagrams, OPTICS and
polygon clipping work on raw degrees. Geometries are shapely objects; "polygonal" means Polygon or
MultiPolygon (possibly empty).
"""
from __future__ import annotations

import hashlib

import numpy as np
import shapely
from scipy.spatial import QhullError, Voronoi
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

EMPTY = Polygon()
# Sentinel points on a circle around the data make every real Voronoi region finite ("finite
# reconstruction"). At radius > 3 R (R = half-diagonal of the area to cover) every location inside that
# area is closer to some real point than to any sentinel, so the real regions cover it without gaps
# (PIGEON's far points at 2x the coordinate span can leave the corners of a large clip shape uncovered).
_SENTINEL_RADIUS_FACTOR = 4.0
_N_SENTINELS = 16


def polygonal(geom: BaseGeometry | None) -> BaseGeometry:
    """The polygonal part of ``geom`` (drops points/lines that intersections leave behind); EMPTY if none."""
    if geom is None or geom.is_empty:
        return EMPTY
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, (Polygon, MultiPolygon))]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    if not polys:
        return EMPTY
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def union(geoms: list[BaseGeometry] | np.ndarray) -> BaseGeometry:
    """Polygonal union of a list of geometries (EMPTY for an empty list)."""
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return EMPTY
    if len(geoms) == 1:
        return polygonal(geoms[0])
    return polygonal(shapely.union_all(geoms))


def voronoi_regions(xy: np.ndarray, cover_bounds: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Finite Voronoi regions (N,) object array of convex Polygons for N distinct points ``xy`` (N, 2).

    Together the regions cover the bounding box of the points and of ``cover_bounds`` (minx, miny, maxx,
    maxy), so clipping them to a shape inside those bounds leaves no gaps. Works for N >= 1 (collinear
    points included) because sentinel points around the data always make a full-dimensional diagram.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
        raise ValueError(f"voronoi_regions needs points of shape (N>=1, 2), got {xy.shape}")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    if cover_bounds is not None:
        lo = np.minimum(lo, cover_bounds[:2])
        hi = np.maximum(hi, cover_bounds[2:])
    centre = (lo + hi) / 2
    radius = max(float(np.hypot(*(hi - lo))) / 2, 1e-3)
    angles = np.linspace(0.0, 2 * np.pi, _N_SENTINELS, endpoint=False)
    sentinels = centre + _SENTINEL_RADIUS_FACTOR * radius * np.c_[np.cos(angles), np.sin(angles)]
    try:
        vor = Voronoi(np.vstack([xy, sentinels]))
    except QhullError:  # nearly coincident points: let qhull joggle the input (moves vertices by ~1e-11)
        vor = Voronoi(np.vstack([xy, sentinels]), qhull_options="Qbb Qc Qz QJ")
    if len(np.unique(vor.point_region[: len(xy)])) < len(xy):
        raise ValueError("voronoi_regions: points closer than qhull can separate; round them (e.g. to 1e-9 deg)")
    regions = [vor.regions[r] for r in vor.point_region[: len(xy)]]
    lengths = np.fromiter((len(r) for r in regions), dtype=np.int64, count=len(regions))
    vert_idx = np.fromiter((v for r in regions for v in r), dtype=np.int64, count=int(lengths.sum()))
    if (vert_idx < 0).any() or (lengths < 3).any():
        raise RuntimeError("Voronoi diagram has an unbounded region for a real point (qhull precision problem)")
    ring_id = np.repeat(np.arange(len(regions)), lengths)
    coords = vor.vertices[vert_idx]
    # qhull does not promise an order for region vertices; regions are convex, so sort by angle
    mean = np.zeros((len(regions), 2))
    np.add.at(mean, ring_id, coords)
    mean /= lengths[:, None]
    ang = np.arctan2(coords[:, 1] - mean[ring_id, 1], coords[:, 0] - mean[ring_id, 0])
    order = np.lexsort((ang, ring_id))
    rings = shapely.linearrings(coords[order], indices=ring_id[order])
    return shapely.polygons(rings)


def fill_holes_within(shape: BaseGeometry, parent: BaseGeometry) -> BaseGeometry:
    """Drop the holes of a single Polygon as far as they lie inside ``parent`` (MultiPolygons unchanged).

    PIGEON drops the holes of a carved-out cluster so that it contains all its interior points; clipping the
    filled shape to the parent keeps holes that are not the parent's (lakes, enclaves of other countries).
    """
    if not isinstance(shape, Polygon) or not shape.interiors:
        return shape
    return polygonal(shapely.intersection(Polygon(shape.exterior), parent))


def scale_about_centre(geom: BaseGeometry, factor: float) -> BaseGeometry:
    """``geom`` scaled by ``factor`` about the centre of its bounding box (shapely.affinity.scale default)."""
    if geom.is_empty:
        return geom
    minx, miny, maxx, maxy = geom.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2

    def _affine(coords: np.ndarray) -> np.ndarray:
        return (coords - (cx, cy)) * factor + (cx, cy)

    return shapely.transform(geom, _affine)


def points_hash(xy: np.ndarray) -> str:
    """Deterministic 12-character id for a set of coordinates (PIGEON names split cells by a hash)."""
    return hashlib.sha1(np.ascontiguousarray(xy, dtype=np.float64).tobytes()).hexdigest()[:12]


def largest_first_parts(geom: BaseGeometry) -> list[BaseGeometry]:
    """Polygon parts of ``geom`` sorted by decreasing area (ties keep GEOS order)."""
    parts = [p for p in shapely.get_parts(polygonal(geom)) if not p.is_empty]
    return sorted(parts, key=lambda p: -p.area)


class WorkCell:
    """A geocell under construction: its points (indices into the point arrays) and its shape.

    ``reason`` is '' for regular cells and names why a cell ended up outside MIN..MAX otherwise
    ('no_neighbour', 'country_below_min', 'unsplittable').
    """

    __slots__ = ("admin1", "country", "name", "points", "reason", "shape")

    def __init__(self, name: str, country: str, admin1: str, shape: BaseGeometry, points: np.ndarray,
                 reason: str = "") -> None:
        self.name = name
        self.country = country
        self.admin1 = admin1
        self.shape = shape
        self.points = np.asarray(points, dtype=np.int64)
        self.reason = reason

    @property
    def size(self) -> int:
        return len(self.points)

    def derive(self, name: str, shape: BaseGeometry, points: np.ndarray) -> WorkCell:
        """A new cell in the same country and admin-1 area (what a split produces)."""
        return WorkCell(name, self.country, self.admin1, shape, points)

    def __repr__(self) -> str:
        return f"WorkCell({self.name!r}, {self.country}, {self.admin1!r}, size={self.size})"
