"""Fusing of undersized geocells within their country (docs/method.md §2.2, fusing).

Per country, repeatedly: pick a random cell with fewer than MIN points (seeded), look for neighbours whose
shape, scaled by 1.01 about its centre, intersects the picked cell's scaled shape, in this priority order,
stopping at the first non-empty set: (i) small cells in the same admin-1 area, (ii) any cell in the same
admin-1 area, (iii) small cells anywhere in the country, (iv) any cell in the country, (v) any cell of the
country intersecting the picked shape scaled a further 2x. The picked cell absorbs the largest candidate
(points and polygons). A cell with no candidate is excluded and stays as it is (isolated).

Speed: the neighbour graph is computed once from the initial shapes with one STRtree query and updated on
every merge (the merged cell's neighbours are the union of both neighbour sets), instead of re-scaling and
re-querying all shapes in every iteration. Scaling the union of two shapes can reach slightly further than
the union of the scaled shapes, so this is a (documented) approximation of PIGEON's per-iteration test;
step (v) is computed exactly on the merged shape, against the initial shapes mapped to their current cell.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import shapely

from model.geocells._geom import WorkCell, scale_about_centre, union

log = logging.getLogger(__name__)


class _Graph:
    """Current cells of the fusing stage: members, sizes and neighbour sets, keyed by initial cell index."""

    def __init__(self, cells: Sequence[WorkCell], scale: float) -> None:
        self.cells = list(cells)
        self.scaled = np.array([scale_about_centre(c.shape, scale) for c in cells], dtype=object)
        self.tree = shapely.STRtree(self.scaled)
        country = np.array([c.country for c in cells], dtype=object)
        src, dst = self.tree.query(self.scaled, predicate="intersects")
        keep = (src != dst) & (country[src] == country[dst])
        self.neighbours: list[set[int]] = [set() for _ in cells]
        for a, b in zip(src[keep].tolist(), dst[keep].tolist()):
            self.neighbours[a].add(b)
            self.neighbours[b].add(a)
        self.size = np.array([c.size for c in cells], dtype=np.int64)
        self.members: list[list[int]] = [[i] for i in range(len(cells))]
        self.root = np.arange(len(cells))  # initial cell -> the cell that absorbed it (kept fully compressed)

    def merge(self, keep: int, gone: int) -> None:
        """``keep`` absorbs ``gone``: points, polygons and neighbours."""
        self.size[keep] += self.size[gone]
        self.size[gone] = 0
        self.members[keep].extend(self.members[gone])
        self.root[self.members[gone]] = keep
        self.members[gone] = []
        for n in self.neighbours[gone]:
            self.neighbours[n].discard(gone)
            if n != keep:
                self.neighbours[n].add(keep)
                self.neighbours[keep].add(n)
        self.neighbours[keep].discard(gone)
        self.neighbours[gone] = set()

    def enlarged_candidates(self, i: int, scale: float, enlarge: float) -> set[int]:
        """Cells of i's country hit by i's merged shape scaled by ``scale * enlarge`` (step v)."""
        shape = union([self.cells[m].shape for m in self.members[i]])
        hits = self.tree.query(scale_about_centre(shape, scale * enlarge), predicate="intersects")
        country = self.cells[i].country
        return {int(r) for r in set(self.root[hits].tolist()) if r != i and self.cells[r].country == country}


class _SmallSet:
    """Cells below MIN in insertion order with O(1) removal and seeded random choice."""

    def __init__(self, items: list[int]) -> None:
        self.items = list(items)
        self.pos = {x: k for k, x in enumerate(self.items)}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, x: int) -> bool:
        return x in self.pos

    def discard(self, x: int) -> None:
        k = self.pos.pop(x, None)
        if k is None:
            return
        last = self.items.pop()
        if k < len(self.items):
            self.items[k] = last
            self.pos[last] = k

    def choice(self, rng: np.random.Generator) -> int:
        return self.items[int(rng.integers(len(self.items)))]


def _pick_target(g: _Graph, i: int, cands: set[int], small: _SmallSet) -> int | None:
    """Largest candidate of the first non-empty priority class (i)-(iv); ties go to the lowest index."""
    admin1 = g.cells[i].admin1
    same_admin1 = {c for c in cands if g.cells[c].admin1 == admin1}
    for tier in ({c for c in same_admin1 if c in small}, same_admin1, {c for c in cands if c in small}, cands):
        if tier:
            return min(tier, key=lambda c: (-g.size[c], c))
    return None


def _fuse_country(g: _Graph, idx: list[int], min_size: int, seed: int, scale: float, enlarge: float) -> set[int]:
    """Fuse the cells ``idx`` of one country in place; returns the excluded (isolated) cells."""
    rng = np.random.default_rng(seed)
    small = _SmallSet([i for i in idx if g.size[i] < min_size])
    excluded: set[int] = set()
    while len(small):
        i = small.choice(rng)
        cands = g.neighbours[i] - excluded
        target = _pick_target(g, i, cands, small)
        if target is None:
            enlarged = g.enlarged_candidates(i, scale, enlarge) - excluded
            target = min(enlarged, key=lambda c: (-g.size[c], c)) if enlarged else None
        if target is None:
            excluded.add(i)
            small.discard(i)
            continue
        small.discard(target)
        g.merge(i, target)
        if g.size[i] >= min_size:
            small.discard(i)
    return excluded


def fuse_small_cells(cells: Sequence[WorkCell], min_size: int, seed: int, scale: float = 1.01,
                     enlarge: float = 2.0) -> list[WorkCell]:
    """Fuse cells below ``min_size`` with neighbours in the same country; returns the surviving cells.

    A surviving cell keeps the name and admin-1 area of the cell that was picked and absorbed the others;
    its shape is the union of its members' shapes. Cells that found no partner have ``reason`` set to
    'country_below_min' (the whole country has fewer than MIN points) or 'no_neighbour' (e.g. an island).
    """
    g = _Graph(cells, scale)
    by_country: dict[str, list[int]] = {}
    for i, c in enumerate(cells):
        by_country.setdefault(c.country, []).append(i)
    excluded: set[int] = set()
    for country in sorted(by_country):
        excluded |= _fuse_country(g, by_country[country], min_size, seed, scale, enlarge)
    alive_per_country = {k: sum(1 for i in v if g.members[i]) for k, v in by_country.items()}
    out = []
    for i, cell in enumerate(g.cells):
        if not g.members[i]:
            continue
        members = g.members[i]
        points = np.sort(np.concatenate([g.cells[m].points for m in members]))
        shape = cell.shape if len(members) == 1 else union([g.cells[m].shape for m in members])
        fused = WorkCell(cell.name, cell.country, cell.admin1, shape, points)
        if i in excluded:
            fused.reason = "country_below_min" if alive_per_country[cell.country] == 1 else "no_neighbour"
        out.append(fused)
    log.info("fusing: %d initial cells -> %d cells (%d isolated below %d points)", len(cells), len(out),
             len(excluded), min_size)
    return out
