"""Initial geocells: approximate admin-2 areas from GeoNames labels inside real admin-1 polygons.

Worldwide admin-2 polygons are not obtainable offline (see docs/geocells.md), so PIGEON's initial cells (one
per admin-2 area holding training points, docs/method.md §2.2) are approximated:

1. Every training point gets a country (``country_at``; points in no country take the nearest country
   polygon) and an admin-1 polygon (``admin1_at``; when that misses or belongs to another country, the
   nearest admin-1 polygon of the point's country). Admin-1 polygons are clipped to their country's
   admin-0 polygon (the layers disagree in disputed areas). A country without any admin-1 polygon
   becomes one pseudo admin-1 area whose polygon is the country itself.
2. Inside one admin-1 area, every GeoNames place (``geodata.places`` of that country, located in the polygon)
   carries an admin-2 label (its ``admin2`` column; empty labels, as for all of CN/RU, mean "the admin-1
   area itself"). A point's admin-2 label is the label of its nearest place (planar lon/lat).
3. The polygon of an admin-2 label is the union of the Voronoi regions of the places carrying it, clipped
   to the admin-1 polygon. Labels without training points are handed, with their polygons, to the label
   with points whose places' centroid is nearest (as PIGEON does with empty admin-2 areas), so the admin-1
   area stays fully covered.
4. Admin-1 polygons without any training point are attached to the nearest cell of the same country
   (nearest shape; ties between touching cells go to the nearest shape centroid), so every country with
   training data is fully covered. Countries without training points stay uncovered.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from model.geocells._geom import WorkCell, polygonal, union, voronoi_regions

log = logging.getLogger(__name__)
_BORDER_SIMPLIFY_DEG = 1e-3  # the admin-1 layer is generalised this much (model.geo.geodata)
_BORDER_SLACK_DEG = 0.005  # how far a cell may reach past its country's admin-0 polygon (~500 m)


def annotate_points(gd: Any, lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Country (N,) str and admin-1 area row (N,) int for points (N, 2) lon/lat, plus the area table.

    The area table has the rows of ``gd.admin1`` (columns code, name, country, geometry) followed by one
    pseudo area per country that has points but no admin-1 polygon.
    """
    lon, lat = lonlat[:, 0], lonlat[:, 1]
    country = np.asarray(gd.country_at(lat, lon), dtype=object)
    missing = np.flatnonzero(country == "")
    if len(missing):
        countries = gd.countries
        tree = shapely.STRtree(countries["geometry"].to_numpy())
        src, hit = tree.query_nearest(shapely.points(lonlat[missing]), all_matches=False)
        country[missing[src]] = countries["iso_a2"].to_numpy()[hit]
        log.info("%d points in no country polygon took the nearest country", len(missing))
    areas = _admin1_table(gd).copy()
    area_country = areas["country"].to_numpy()
    for c in sorted(set(country)):
        rows = np.flatnonzero(area_country == c)
        areas.loc[rows, "geometry"] = pd.Series(_clipped_to_country(gd, c), index=rows, dtype=object)
    area = np.asarray(gd.admin1_at(lat, lon), dtype=np.int64)
    bad = (area < 0) | (area_country[np.maximum(area, 0)] != country)
    pseudo: list[dict] = []
    for c in sorted(set(country[bad])):
        todo = np.flatnonzero(bad & (country == c))
        rows = np.flatnonzero(area_country == c)
        found = np.zeros(len(todo), dtype=bool)
        if len(rows):
            tree = shapely.STRtree(areas["geometry"].to_numpy()[rows])
            src, hit = tree.query_nearest(shapely.points(lonlat[todo]), all_matches=False)
            area[todo[src]] = rows[hit]
            found[src] = True
        if not found.all():  # no (non-empty) admin-1 polygon in this country: the country is the area
            area[todo[~found]] = len(areas) + len(pseudo)
            pseudo.append(_pseudo_area(gd, c))
    if pseudo:
        areas = pd.concat([areas, pd.DataFrame(pseudo)], ignore_index=True)
    return country, area, areas


@functools.lru_cache(maxsize=2)
def _admin1_table(gd: Any) -> pd.DataFrame:
    admin1 = gd.admin1
    return pd.DataFrame({"code": admin1["iso_3166_2"].astype(str).to_numpy(),
                         "name": admin1["name"].astype(str).to_numpy(),
                         "country": admin1["country"].astype(str).to_numpy(),
                         "geometry": admin1["geometry"].to_numpy()})


@functools.lru_cache(maxsize=512)
def _clipped_to_country(gd: Any, iso_a2: str) -> np.ndarray:
    """Admin-1 polygons of one country clipped to its admin-0 polygon, (K,) in ``gd.admin1`` row order.

    The two layers disagree in disputed areas (Western Sahara, Crimea, Golan, Northern Cyprus, ...), where
    clipping keeps cells from crossing a country border. The clip polygon is the country generalised like
    the admin-1 layer and widened by a small slack: clipping to the full-detail coastline would gain
    nothing but vertices (slower splitting, larger files), and 99 % of admin-1 polygons then lie wholly
    inside and skip the overlay.
    """
    table = _admin1_table(gd)
    geoms = table["geometry"].to_numpy()[table["country"].to_numpy() == iso_a2]
    own = gd.countries.loc[gd.countries["iso_a2"] == iso_a2, "geometry"]
    if own.empty or len(geoms) == 0:
        return geoms
    border = shapely.simplify(own.iloc[0], _BORDER_SIMPLIFY_DEG).buffer(_BORDER_SLACK_DEG, quad_segs=2)
    shapely.prepare(border)
    out = geoms.copy()
    todo = ~shapely.contains_properly(border, geoms)
    out[todo] = [polygonal(g) for g in shapely.intersection(geoms[todo], border)]
    return out


def _pseudo_area(gd: Any, iso_a2: str) -> dict:
    rows = gd.countries[gd.countries["iso_a2"] == iso_a2]
    if rows.empty:
        raise ValueError(f"country code {iso_a2!r} from country_at() is missing from geodata.countries")
    return {"code": iso_a2, "name": str(rows["name"].iloc[0]), "country": iso_a2,
            "geometry": rows["geometry"].iloc[0]}


@functools.lru_cache(maxsize=2)
def _places(gd: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GeoNames places as (lonlat (P, 2), admin-2 label (P,) str, admin-1 row (P,) int, -1 = none).

    A place whose polygon country differs from its admin-1 polygon's country (a place near a generalised
    border) gets row -1: it must not lend its admin-2 label to the other country.
    """
    places = gd.places
    lonlat = places[["lon", "lat"]].to_numpy(dtype=np.float64)
    labels = places["admin2"].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    area = np.asarray(gd.admin1_at(lonlat[:, 1], lonlat[:, 0]), dtype=np.int64)
    place_country = np.asarray(gd.country_at(lonlat[:, 1], lonlat[:, 0]), dtype=object)
    area_country = _admin1_table(gd)["country"].to_numpy()
    area[(area >= 0) & (area_country[np.maximum(area, 0)] != place_country)] = -1
    return lonlat, labels, area


def initial_cells(gd: Any, lonlat: np.ndarray, country: np.ndarray, area: np.ndarray,
                  areas: pd.DataFrame) -> list[WorkCell]:
    """One WorkCell per (admin-1 area, admin-2 label) holding training points, covering each country."""
    place_xy, place_label, place_area = _places(gd)
    order = np.argsort(place_area, kind="stable")
    starts = np.searchsorted(place_area[order], np.arange(len(areas) + 1))
    cells: list[WorkCell] = []
    for a in np.unique(area):
        pts = np.flatnonzero(area == a)
        places = order[starts[a]:starts[a + 1]]  # pseudo areas (rows past gd.admin1) hold no places
        row = areas.iloc[int(a)]
        cells.extend(_area_cells(row, pts, lonlat, place_xy[places], place_label[places]))
    _attach_empty_areas(cells, areas, set(np.unique(area).tolist()))
    log.info("initial cells: %d from %d admin-1 areas", len(cells), len(np.unique(area)))
    return cells


def _area_cells(row: pd.Series, pts: np.ndarray, lonlat: np.ndarray, place_xy: np.ndarray,
                place_label: np.ndarray) -> list[WorkCell]:
    """Cells of one admin-1 area: one per admin-2 label that holds points (see module docstring)."""
    geom = polygonal(row["geometry"])
    if len(place_xy) == 0 or len(set(place_label)) == 1:
        label = place_label[0] if len(place_xy) else ""
        return [WorkCell(label or row["name"], row["country"], row["name"], geom, pts)]
    uniq_xy, first = np.unique(np.round(place_xy, 9), axis=0, return_index=True)
    labels, label_id = np.unique(place_label[first], return_inverse=True)
    _, nearest = cKDTree(uniq_xy).query(lonlat[pts])
    point_label = label_id[nearest]
    used = np.unique(point_label)
    if len(used) == 1:
        return [WorkCell(labels[used[0]] or row["name"], row["country"], row["name"], geom, pts)]
    # labels without points go to the used label whose places' centroid is nearest
    centre = np.stack([uniq_xy[label_id == k].mean(axis=0) for k in range(len(labels))])
    d2 = ((centre[:, None, :] - centre[None, used, :]) ** 2).sum(axis=-1)
    owner = used[d2.argmin(axis=1)]
    owner[used] = used
    regions = voronoi_regions(uniq_xy, geom.bounds)
    place_owner = owner[label_id]
    shapes = [shapely.coverage_union_all(regions[place_owner == k]) for k in used]
    shapes = _clip(np.array(shapes, dtype=object), geom)
    point_label = _rehome_empty(shapes, used, point_label, lonlat[pts])
    return [WorkCell(labels[k] or row["name"], row["country"], row["name"], shapes[i], pts[point_label == k])
            for i, k in enumerate(used) if (point_label == k).any()]


def _clip(shapes: np.ndarray, geom: Any) -> list:
    """Intersect each shape with ``geom``, skipping the expensive overlay for shapes fully inside it."""
    shapely.prepare(geom)
    inside = shapely.contains_properly(geom, shapes)
    out = shapes.copy()
    if (~inside).any():
        out[~inside] = shapely.intersection(shapes[~inside], geom)
    return [polygonal(g) for g in out]


def _rehome_empty(shapes: list, used: np.ndarray, point_label: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Move the points of labels whose clipped shape is empty to the nearest non-empty label shape."""
    empty = np.array([s.is_empty for s in shapes])
    if not empty.any() or empty.all():
        return point_label
    keep = np.flatnonzero(~empty)
    tree = shapely.STRtree([shapes[i] for i in keep])
    point_label = point_label.copy()
    for i in np.flatnonzero(empty):
        sel = np.flatnonzero(point_label == used[i])
        _, hit = tree.query_nearest(shapely.points(xy[sel]), all_matches=False)
        point_label[sel] = used[keep[hit]]
    return point_label


def _attach_empty_areas(cells: list[WorkCell], areas: pd.DataFrame, used: set[int]) -> None:
    """Add every admin-1 polygon without points to the nearest cell of its country (docs/method.md §2.2)."""
    by_country: dict[str, list[int]] = {}
    for i, c in enumerate(cells):
        by_country.setdefault(c.country, []).append(i)
    extra: dict[int, list] = {}
    for country, idx in by_country.items():
        rows = [r for r in np.flatnonzero(areas["country"].to_numpy() == country) if r not in used]
        if not rows:
            continue
        shapes = [cells[i].shape for i in idx]
        tree = shapely.STRtree(shapes)
        centres = shapely.centroid(shapes)
        for r in rows:
            geom = areas["geometry"].iloc[r]
            if geom.is_empty:  # a disputed polygon lying wholly in another country
                continue
            hits = tree.query_nearest(geom, all_matches=True)
            best = min(hits.tolist(), key=lambda h: (shapely.distance(centres[h], geom.centroid), h))
            extra.setdefault(idx[best], []).append(geom)
    for i, geoms in extra.items():
        cells[i].shape = union([cells[i].shape, *geoms])
