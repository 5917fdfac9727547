"""Splitting of oversized geocells: OPTICS clusters + Voronoi tessellation (docs/method.md §2.2,
splitting).

For every OPTICS (min_samples, xi) pass, in order, cells with more than MAX points are clustered on raw
(lon, lat) degrees and carved up with Voronoi regions clipped to the parent's shape, round after round,
until no cell above MAX can be split any more with that pass; the next pass then retries the rest. Cells
still above MAX after the last pass are marked isolated ('unsplittable').

Deviations from the released PIGEON code, all to keep the invariants the rest of the pipeline relies on:
- Point membership follows geometry: a point goes to the piece whose shape covers it (the cluster label only
  decides for points outside the parent's shape, such as points just off the coast). So a cell's polygon
  contains its own points and ``Geocells.assign`` reproduces the training labels.
- A split whose cleaned-up pieces fall below MIN fuses those pieces into their sibling with the longest
  common border; a split that collapses back to one piece is abandoned (the cell stays as it was).
- Dirty-split parts that touch no sibling stay with their cell (PIGEON drops them from the shape).
- Optional (``bisect``, on by default): cells that no OPTICS pass can split (evenly spread points have no
  density structure) are halved by straight cuts at the median of their longer extent until <= MAX,
  instead of staying oversized. Off reproduces the released behaviour.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, box
from sklearn.cluster import cluster_optics_xi

from model.geocells._geom import (
    WorkCell,
    fill_holes_within,
    largest_first_parts,
    points_hash,
    polygonal,
    union,
    voronoi_regions,
)

log = logging.getLogger(__name__)


def optics_labels(xy: np.ndarray, min_samples: int, xi: float) -> np.ndarray:
    """OPTICS cluster labels (N,) int for points ``xy`` (N, 2) in degrees (Euclidean); -1 = noise.

    Same algorithm and tie-breaking as ``sklearn.cluster.OPTICS(min_samples, xi)`` with ``max_eps=inf``
    (the ordering loop of ``compute_optics_graph`` followed by sklearn's own ``cluster_optics_xi``), but each
    step is one vectorised distance update instead of a neighbour-tree radius query: ~50x faster on
    cell-sized inputs. tests/test_geocells.py checks the labels against sklearn.
    """
    xy = np.asarray(xy, dtype=np.float64)
    n = len(xy)
    ms = min(min_samples, n)
    core = cKDTree(xy).query(xy, k=ms)[0]
    core = np.array(core[:, -1] if ms > 1 else np.zeros(n), dtype=np.float64)
    decimals = np.finfo(np.float64).precision  # sklearn rounds distances like this before comparing
    np.around(core, decimals=decimals, out=core)
    reach = np.full(n, np.inf)
    pred = np.full(n, -1, dtype=np.int64)
    processed = np.zeros(n, dtype=bool)
    key = np.full(n, np.inf)  # reachability of the unprocessed points; inf once processed
    ordering = np.empty(n, dtype=np.int64)
    first_unprocessed = 0
    for k in range(n):
        p = int(np.argmin(key))
        if key[p] == np.inf:  # nothing reachable: sklearn takes the smallest unprocessed index
            while processed[first_unprocessed]:
                first_unprocessed += 1
            p = first_unprocessed
        processed[p], ordering[k], key[p] = True, p, np.inf
        diff = xy - xy[p]
        rd = np.maximum(np.sqrt(diff[:, 0] ** 2 + diff[:, 1] ** 2), core[p])
        np.around(rd, decimals=decimals, out=rd)
        better = (rd < reach) & ~processed
        reach[better] = rd[better]
        pred[better] = p
        key[better] = rd[better]
    labels, _ = cluster_optics_xi(reachability=reach, predecessor=pred, ordering=ordering, min_samples=ms, xi=xi)
    return labels


def split_cell(cell: WorkCell, lonlat: np.ndarray, min_samples: int, xi: float, min_size: int,
               max_size: int, buffer_deg: float) -> list[WorkCell] | None:
    """Split one cell with one OPTICS pass; returns the pieces (each >= min_size points) or None if unsplit.

    ``lonlat`` (N, 2) holds (lon_deg, lat_deg) of all points; ``cell.points`` indexes into it.
    """
    xy = lonlat[cell.points]
    labels = optics_labels(xy, min_samples, xi)
    if len(np.unique(labels)) < 2:
        return None
    ids, counts = np.unique(labels, return_counts=True)
    labels = np.where(np.isin(labels, ids[(counts < min_size) & (ids != -1)]), -1, labels)
    ids, counts = np.unique(labels, return_counts=True)
    large = ids[counts >= min_size]
    real = large[large != -1]
    if len(large) < 2:
        return None
    pts = shapely.points(xy)
    if len(real) == 1:  # one cluster inside a large noise "doughnut"
        if int((labels == -1).sum()) > max_size:
            return None
        pieces = _carve(cell, xy, pts, labels == real[0])
    else:
        labels = _noise_to_nearest_centroid(xy, labels, real)
        if len(real) == 2:
            pieces = _carve(cell, xy, pts, labels == real[0])
        else:
            pieces = _tessellate(cell, xy, pts, labels, real)
    if pieces is None:
        return None
    _clean_dirty_splits(pieces, lonlat, buffer_deg)
    pieces = _fuse_small_siblings(pieces, min_size, buffer_deg)
    return pieces if len(pieces) > 1 else None


def _noise_to_nearest_centroid(xy: np.ndarray, labels: np.ndarray, real: np.ndarray) -> np.ndarray:
    centroids = np.stack([xy[labels == k].mean(axis=0) for k in real])
    noise = labels == -1
    if noise.any():
        d2 = ((xy[noise, None, :] - centroids[None]) ** 2).sum(axis=-1)
        labels = labels.copy()
        labels[noise] = real[d2.argmin(axis=1)]
    return labels


def _carve(cell: WorkCell, xy: np.ndarray, pts: np.ndarray, cluster: np.ndarray) -> list[WorkCell]:
    """Cut the cluster's Voronoi area (regions of all distinct points, clipped to the shape) out of the cell."""
    parent = cell.shape
    # points within 1e-9 deg (0.1 mm) of each other share one Voronoi region
    uniq, inverse = np.unique(np.round(xy, 9), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    regions = voronoi_regions(uniq, parent.bounds if not parent.is_empty else None)
    in_cluster = np.zeros(len(uniq), dtype=bool)
    in_cluster[inverse[cluster]] = True
    carved = polygonal(shapely.intersection(shapely.coverage_union_all(regions[in_cluster]), parent))
    carved = fill_holes_within(carved, parent)
    rest = polygonal(shapely.difference(parent, carved))
    shapely.prepare(carved)
    shapely.prepare(parent)
    inside_parent = shapely.covers(parent, pts)
    to_new = shapely.covers(carved, pts) | (cluster & ~inside_parent)
    return [cell.derive(points_hash(xy[to_new]), carved, cell.points[to_new]),
            cell.derive(cell.name, rest, cell.points[~to_new])]


def _tessellate(cell: WorkCell, xy: np.ndarray, pts: np.ndarray, labels: np.ndarray,
                real: np.ndarray) -> list[WorkCell] | None:
    """Replace the cell by the Voronoi regions of its cluster centroids, clipped to its shape."""
    parent = cell.shape
    centroids = np.stack([xy[labels == k].mean(axis=0) for k in real])
    if len(np.unique(np.round(centroids, 9), axis=0)) < len(centroids):
        return None
    regions = voronoi_regions(centroids, parent.bounds if not parent.is_empty else None)
    shapes = [polygonal(g) for g in shapely.intersection(regions, parent)]
    owner = np.full(len(xy), -1)
    for k, shape in enumerate(shapes):
        shapely.prepare(shape)
        owner[(owner < 0) & shapely.covers(shape, pts)] = k
    outside = owner < 0
    owner[outside] = np.searchsorted(real, labels[outside])
    return [cell.derive(points_hash(xy[owner == k]), shape, cell.points[owner == k])
            for k, shape in enumerate(shapes)]


def _clean_dirty_splits(pieces: list[WorkCell], lonlat: np.ndarray, buffer_deg: float) -> None:
    """Give every detached part of a piece (with its points) to the sibling it overlaps most when buffered.

    Overlaps are measured against the pieces' shapes as they were before the clean-up (as PIGEON does),
    so each receiving piece is unioned once with everything it gains.
    """
    if len(pieces) < 2:
        return
    shapes = np.array([p.shape for p in pieces], dtype=object)
    gained: list[list] = [[] for _ in pieces]
    gained_points: list[list[np.ndarray]] = [[] for _ in pieces]
    for i, piece in enumerate(pieces):
        parts = largest_first_parts(shapes[i])
        if len(parts) < 2:
            continue
        others = np.array([j for j in range(len(pieces)) if j != i])
        grown = shapely.buffer(np.array(parts[1:], dtype=object), buffer_deg)
        overlap = np.zeros((len(grown), len(others)))
        a, b = np.nonzero(shapely.intersects(grown[:, None], shapes[others][None, :]))
        overlap[a, b] = shapely.area(shapely.intersection(grown[a], shapes[others][b]))
        pts = shapely.points(lonlat[piece.points])
        stay = np.ones(len(pts), dtype=bool)
        keep = [parts[0]]
        for part, row in zip(parts[1:], overlap):
            if not (row > 0).any():
                keep.append(part)
                continue
            j = int(others[np.argmax(row)])
            moved = stay & shapely.covers(part, pts)
            gained[j].append(part)
            gained_points[j].append(piece.points[moved])
            stay &= ~moved
        piece.shape = keep[0] if len(keep) == 1 else MultiPolygon(keep)  # disjoint parts: no overlay needed
        piece.points = piece.points[stay]
    for j, piece in enumerate(pieces):
        if gained[j]:
            piece.shape = union([piece.shape, *gained[j]])
            piece.points = np.sort(np.concatenate([piece.points, *gained_points[j]]))


def _fuse_small_siblings(pieces: list[WorkCell], min_size: int, buffer_deg: float) -> list[WorkCell]:
    """Merge pieces below ``min_size`` into the sibling sharing the longest border (else the nearest one)."""
    pieces = list(pieces)
    while len(pieces) > 1:
        sizes = np.array([p.size for p in pieces])
        i = int(np.argmin(sizes))
        if sizes[i] >= min_size:
            break
        small = pieces.pop(i)
        shapes = [p.shape for p in pieces]
        if small.shape.is_empty:
            j = int(np.argmax(sizes[np.arange(len(sizes)) != i]))
        else:
            overlap = shapely.area(shapely.intersection(small.shape.buffer(buffer_deg), shapes))
            j = int(np.argmax(overlap)) if (overlap > 0).any() else int(np.argmin(shapely.distance(small.shape, shapes)))
        target = pieces[j]
        target.shape = union([target.shape, small.shape])
        target.points = np.sort(np.concatenate([target.points, small.points]))
    return pieces


def bisect_cell(cell: WorkCell, lonlat: np.ndarray, min_size: int, buffer_deg: float) -> list[WorkCell] | None:
    """Halve a cell by a straight cut at the median of its points' longer extent (fallback after OPTICS).

    The cut runs midway between two distinct coordinates, so no point lies on it and membership by
    coordinate agrees with the clipped shapes. None if no cut leaves ``min_size`` points on both sides.
    """
    xy = lonlat[cell.points]
    n = len(xy)
    if n < 2 * min_size:
        return None
    spans = np.ptp(xy, axis=0)
    for axis in np.argsort(-spans, kind="stable"):
        values = np.sort(xy[:, axis])
        # candidate cut positions k (k points below): distinct neighbours, both sides >= min_size
        ks = np.flatnonzero(values[1:] > values[:-1]) + 1
        ks = ks[(ks >= min_size) & (n - ks >= min_size)]
        if len(ks) == 0:
            continue
        k = int(ks[np.argmin(np.abs(ks - n // 2))])
        cut = (values[k - 1] + values[k]) / 2
        lower = xy[:, axis] < cut
        lo_box = _half_plane_box(xy, cell.shape, axis, cut)
        lo_shape = polygonal(shapely.intersection(cell.shape, lo_box))
        hi_shape = polygonal(shapely.difference(cell.shape, lo_box))
        for clean in (True, False):  # the clean-up can unbalance a cut through islands: then skip it
            pieces = [cell.derive(points_hash(xy[lower]), lo_shape, cell.points[lower]),
                      cell.derive(points_hash(xy[~lower]), hi_shape, cell.points[~lower])]
            if clean:
                _clean_dirty_splits(pieces, lonlat, buffer_deg)
            pieces = _fuse_small_siblings(pieces, min_size, buffer_deg)
            if len(pieces) > 1:
                return pieces
    return None


def _half_plane_box(xy: np.ndarray, shape: object, axis: int, cut: float) -> object:
    """A box covering the points and the shape on the low side of ``cut`` along ``axis`` (0 = lon, 1 = lat)."""
    lo, hi = xy.min(axis=0) - 1, xy.max(axis=0) + 1
    if not shape.is_empty:
        lo, hi = np.minimum(lo, np.array(shape.bounds[:2]) - 1), np.maximum(hi, np.array(shape.bounds[2:]) + 1)
    return box(lo[0], lo[1], cut, hi[1]) if axis == 0 else box(lo[0], lo[1], hi[0], cut)


def split_large_cells(cells: Sequence[WorkCell], lonlat: np.ndarray, min_size: int, max_size: int,
                      passes: Sequence[tuple[int, float]], buffer_deg: float, bisect: bool = True
                      ) -> list[WorkCell]:
    """Split every cell above ``max_size`` (docs/method.md §2.2, splitting); returns the new list of cells.

    With ``bisect``, cells that no OPTICS pass could split are halved by straight cuts (``bisect_cell``).
    Cells still above ``max_size`` come back with ``reason='unsplittable'``.
    """
    done = [c for c in cells if c.size <= max_size]
    pending = [c for c in cells if c.size > max_size]
    steps = [(lambda c, ms=ms, xi=xi: split_cell(c, lonlat, ms, xi, min_size, max_size, buffer_deg),
              f"OPTICS{(ms, xi)}") for ms, xi in passes]
    if bisect:
        steps.append((lambda c: bisect_cell(c, lonlat, min_size, buffer_deg), "bisect"))
    for split, label in steps:
        stuck: list[WorkCell] = []
        queue, rounds = pending, 0
        while queue:
            rounds += 1
            nxt: list[WorkCell] = []
            for cell in queue:
                pieces = split(cell)
                if pieces is None:
                    stuck.append(cell)
                    continue
                for piece in pieces:
                    (nxt if piece.size > max_size else done).append(piece)
            queue = nxt
        log.info("%s: %d rounds, %d cells still above %d points", label, rounds, len(stuck), max_size)
        pending = stuck
    for cell in pending:
        cell.reason = "unsplittable"
    return done + pending
