"""Geocell building blocks on synthetic shapes: OPTICS, Voronoi, fusing priorities, splitting (no geodata)."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import box
from sklearn.cluster import OPTICS

from model.geocells._fuse import fuse_small_cells
from model.geocells._geom import WorkCell, voronoi_regions
from model.geocells._split import bisect_cell, optics_labels, split_large_cells

PASSES = ((8, 0.05), (10, 0.025), (15, 0.015))


def _cells(specs):
    """specs: (name, country, admin1, (x0, y0, x1, y1), size) -> WorkCells with consecutive point ids."""
    out, start = [], 0
    for name, country, admin1, bounds, size in specs:
        out.append(WorkCell(name, country, admin1, box(*bounds), np.arange(start, start + size)))
        start += size
    return out


def _by_name(cells):
    return {c.name: c for c in cells}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("min_samples, xi", PASSES)
def test_optics_labels_match_sklearn(seed, min_samples, xi):
    rng = np.random.default_rng(seed)
    xy = np.concatenate([rng.normal(rng.uniform(0, 2, 2), 0.15, (int(rng.integers(20, 90)), 2))
                         for _ in range(4)] + [rng.uniform(0, 2, (30, 2))])
    xy = np.round(xy, 3)  # exact duplicates, as jittered GPS data has
    expected = OPTICS(min_samples=min_samples, xi=xi).fit_predict(xy)
    np.testing.assert_array_equal(optics_labels(xy, min_samples, xi), expected)


@pytest.mark.parametrize("xy", [np.random.default_rng(0).uniform(0, 1, (50, 2)), np.array([[0.5, 0.5]]),
                                np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])])  # random, single, collinear
def test_voronoi_regions_partition_the_cover_box(xy):
    cover = (-3.0, -3.0, 5.0, 5.0)
    regions = voronoi_regions(xy, cover)
    assert regions.shape == (len(xy),)
    assert shapely.covers(regions, shapely.points(xy)).all()
    union = shapely.union_all(regions)
    assert union.covers(box(*cover))
    assert union.area == pytest.approx(shapely.area(regions).sum())  # no overlaps


def test_fusing_prefers_small_neighbours_in_the_same_admin1():
    cells = _cells([("a", "AA", "x", (0, 0, 1, 1), 10), ("b", "AA", "x", (1, 0, 2, 2), 100),
                    ("c", "AA", "x", (0, 1, 1, 2), 10)])
    fused = fuse_small_cells(cells, min_size=20, seed=330)
    assert sorted(c.size for c in fused) == [20, 100]  # a + c, not a + (largest) b
    assert all(c.reason == "" for c in fused)


def test_fusing_prefers_the_same_admin1_over_a_larger_cell_elsewhere_in_the_country():
    cells = _cells([("a", "AA", "x", (1, 0, 2, 1), 10), ("b", "AA", "x", (0, 0, 1, 1), 50),
                    ("c", "AA", "y", (2, 0, 3, 1), 80)])
    fused = _by_name(fuse_small_cells(cells, min_size=20, seed=330))
    assert set(fused) == {"a", "c"} and fused["a"].size == 60 and fused["a"].admin1 == "x"
    assert fused["a"].shape.equals(box(0, 0, 2, 1))  # the union of both polygons
    np.testing.assert_array_equal(fused["a"].points, np.arange(60))


def test_fusing_never_crosses_countries_and_flags_isolated_cells():
    cells = _cells([("a", "AA", "x", (0, 0, 1, 1), 10),    # touches only BB's cell
                    ("far", "AA", "x", (50, 50, 51, 51), 40),
                    ("b", "BB", "z", (1, 0, 2, 1), 100),
                    ("lone", "CC", "w", (0, 1, 1, 2), 5)])  # touches a and b, but it is all of CC
    fused = _by_name(fuse_small_cells(cells, min_size=30, seed=330))
    assert set(fused) == {"a", "far", "b", "lone"}
    assert fused["a"].reason == "no_neighbour" and fused["a"].size == 10
    assert fused["lone"].reason == "country_below_min"
    assert fused["b"].reason == "" and fused["far"].reason == ""


def test_fusing_falls_back_to_the_enlarged_shape_for_nearby_islands():
    cells = _cells([("island", "AA", "x", (0, 0, 1, 1), 10), ("main", "AA", "y", (1.3, 0, 3, 1), 40)])
    fused = fuse_small_cells(cells, min_size=30, seed=330)
    assert [(c.name, c.size, c.reason) for c in fused] == [("island", 50, "")]


def _blobs(rng, centres, n, sd):
    return np.concatenate([rng.normal(c, sd, (n, 2)) for c in centres])


def test_split_separates_two_blobs_along_a_voronoi_border():
    rng = np.random.default_rng(0)
    lonlat = _blobs(rng, [(2.0, 2.0), (8.0, 8.0)], 40, 0.3)
    parent = WorkCell("p", "AA", "x", box(0, 0, 10, 10), np.arange(len(lonlat)))
    cells = split_large_cells([parent], lonlat, 30, 60, PASSES, 0.01, bisect=False)
    assert sorted(c.size for c in cells) == [40, 40] and all(c.reason == "" for c in cells)
    assert {frozenset(c.points.tolist()) for c in cells} == {frozenset(range(40)), frozenset(range(40, 80))}
    assert shapely.union_all([c.shape for c in cells]).equals(box(0, 0, 10, 10))
    assert sum(c.shape.area for c in cells) == pytest.approx(100)
    for c in cells:  # each piece's polygon holds its own points
        assert shapely.covers(c.shape, shapely.points(lonlat[c.points])).all()


def test_split_tessellates_many_clusters_with_sizes_in_range():
    rng = np.random.default_rng(1)
    centres = [(1.0, 1.0), (5.0, 1.0), (9.0, 1.0), (1.0, 9.0), (5.0, 9.0), (9.0, 9.0)]
    lonlat = _blobs(rng, centres, 45, 0.2)
    parent = WorkCell("p", "AA", "x", box(0, 0, 10, 10), np.arange(len(lonlat)))
    cells = split_large_cells([parent], lonlat, 30, 60, PASSES, 0.01, bisect=False)
    assert len(cells) == 6 and all(30 <= c.size <= 60 for c in cells)
    assert np.array_equal(np.sort(np.concatenate([c.points for c in cells])), np.arange(len(lonlat)))


def test_evenly_spread_points_need_the_bisect_fallback():
    gx, gy = np.meshgrid(np.arange(15) * 0.66 + 0.2, np.arange(10) + 0.5)
    lonlat = np.c_[gx.ravel(), gy.ravel()]  # a regular grid: no density structure for OPTICS
    make = lambda: WorkCell("p", "AA", "x", box(0, 0, 10, 10), np.arange(150))
    stuck = split_large_cells([make()], lonlat, 30, 60, PASSES, 0.01, bisect=False)
    assert [(c.size, c.reason) for c in stuck] == [(150, "unsplittable")]
    cells = split_large_cells([make()], lonlat, 30, 60, PASSES, 0.01, bisect=True)
    assert all(30 <= c.size <= 60 and c.reason == "" for c in cells)
    assert sum(c.shape.area for c in cells) == pytest.approx(100)
    for c in cells:
        assert shapely.covers(c.shape, shapely.points(lonlat[c.points])).all()


def test_bisect_refuses_cells_too_small_for_two_halves():
    lonlat = np.random.default_rng(3).uniform(0, 1, (50, 2))
    cell = WorkCell("p", "AA", "x", box(0, 0, 1, 1), np.arange(50))
    assert bisect_cell(cell, lonlat, min_size=30, buffer_deg=0.01) is None
    same = np.zeros((80, 2))  # identical points cannot be cut
    assert bisect_cell(WorkCell("q", "AA", "x", box(-1, -1, 1, 1), np.arange(80)), same, 30, 0.01) is None
