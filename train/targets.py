"""Training targets per location: geocell label and PIGEON's auxiliary targets (docs/method.md §2.1, §2.6).

Regression targets (standardised with train-split mean/std, NaN = unknown and masked in the loss): elevation
(CSV ``elevation_m``, else the offline raster), temp_avg / temp_diff / prec_avg / prec_diff (ERA5 climatology
from ``model.geo.geodata``) and a population proxy, log10(1 + population of the nearest GeoNames place) (no
gridded population raster exists offline). Classification: Koppen class (``koppen`` column; all 31 classes of
the offline map, unknown = -1) and month (``month`` 1..12, unknown = -1). Targets that are unknown for the
whole train split are left out of the head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.geo.geodata import load_or_none
from model.network import AuxSpec
from train.data import LocationTable

REGRESSION_TARGETS = ("elevation", "temp_avg", "temp_diff", "prec_avg", "prec_diff", "population")
AUX_PURPOSE = "climate/population auxiliary targets"  # what is skipped when geodata is missing


@dataclass
class Targets:
    """Per-location arrays, all in dataset (CSV) order: N locations."""

    cells: np.ndarray  # (N,) int64 geocell id
    latlon_deg: np.ndarray  # (N, 2)
    regression: np.ndarray  # (N, R) float32, standardised, NaN = unknown
    koppen: np.ndarray  # (N,) int64, -1 = unknown
    month: np.ndarray  # (N,) int64 0..11, -1 = unknown
    aux: AuxSpec


def _float_column(table: LocationTable, name: str) -> np.ndarray:
    out = np.full(len(table), np.nan)
    for i, text in enumerate(table.column(name)):
        try:
            out[i] = float(text)
        except ValueError:
            pass
    return out


def raw_regression(table: LocationTable, geodata=None) -> dict[str, np.ndarray]:
    """Unstandardised regression targets (N,) per name; NaN where unknown."""
    lat, lon = table.latlon_deg[:, 0], table.latlon_deg[:, 1]
    out = {name: np.full(len(table), np.nan) for name in REGRESSION_TARGETS}
    out["elevation"] = _float_column(table, "elevation_m")
    if geodata is None:
        return out
    todo = ~np.isfinite(out["elevation"])
    if todo.any():
        out["elevation"][todo] = geodata.elevation_at(lat[todo], lon[todo])
    clim = geodata.climate_at(lat, lon)
    for name in ("temp_avg", "temp_diff"):
        out[name] = clim[f"{name}_c"]
    for name in ("prec_avg", "prec_diff"):
        out[name] = clim[f"{name}_mm"]
    idx, _ = geodata.nearest_place(lat, lon, k=1)
    pop = geodata.places["population"].to_numpy(dtype=np.float64)[idx[:, 0]]
    out["population"] = np.log10(1.0 + np.where(np.isfinite(pop), pop, 0.0))
    return out


def koppen_classes() -> tuple[str, ...]:
    from model.geo.geodata import KOPPEN_CLASSES

    return tuple(KOPPEN_CLASSES)


def build_targets(table: LocationTable, cells: np.ndarray, multitask: bool, geodata="auto") -> Targets:
    """Targets for every location; ``cells`` (N,) from ``Geocells.assign``. Statistics use the train split
    only."""
    n = len(table)
    if not multitask:
        return Targets(cells, table.latlon_deg, np.zeros((n, 0), np.float32), np.full(n, -1), np.full(n, -1),
                       AuxSpec())
    raw = raw_regression(table, load_or_none(AUX_PURPOSE) if geodata == "auto" else geodata)
    train = table.indices("train")
    names, cols, means, stds = [], [], [], []
    for name, values in raw.items():
        known = values[train][np.isfinite(values[train])]
        if known.size == 0:
            continue
        mu, sd = float(known.mean()), float(known.std())
        names.append(name)
        means.append(mu)
        stds.append(sd if sd > 0 else 1.0)
        cols.append((values - mu) / stds[-1])
    reg = np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((n, 0), np.float32)
    classes = koppen_classes()
    lut = {c: i for i, c in enumerate(classes)}
    koppen = np.array([lut.get(c, -1) for c in table.column("koppen")], dtype=np.int64)
    month_raw = _float_column(table, "month")
    month = np.where((month_raw >= 1) & (month_raw <= 12), np.nan_to_num(month_raw) - 1, -1).astype(np.int64)
    has_koppen, has_month = bool((koppen[train] >= 0).any()), bool((month[train] >= 0).any())
    aux = AuxSpec(tuple(names), tuple(means), tuple(stds), classes if has_koppen else (), has_month)
    return Targets(cells, table.latlon_deg, reg, koppen, month, aux)
