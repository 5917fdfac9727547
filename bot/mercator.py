"""Web Mercator (EPSG:3857) screen geometry for clicking a guess map: pure functions, numpy only.

At zoom ``z`` the world is ``256 * 2**z`` CSS pixels wide (Google Maps, Leaflet and GeoGuessr's guess map all
use this tiling). World pixel coordinates (Google Maps JavaScript API, "Map and tile coordinates",
https://developers.google.com/maps/documentation/javascript/coordinates):

    x = 256 * 2**z * (lon + 180) / 360
    y = 256 * 2**z * (1/2 - ln(tan(pi/4 + lat/2)) / (2 pi))

A point's position inside a map container is the container centre plus (x - x_centre, y - y_centre), with the
horizontal offset wrapped by one world width to the shorter side (the map repeats east-west). Latitudes are
clamped to +-85.0511 deg, where the square Mercator world ends. Everything here is in CSS pixels: Playwright's
mouse works in CSS pixels, so the device pixel ratio never enters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

TILE_PX = 256
MAX_LAT_DEG = 85.0511287798066  # atan(sinh(pi)): the edge of the square Mercator world
EARTH_RADIUS_M = 6378137.0       # the EPSG:3857 sphere


def world_size_px(zoom: float) -> float:
    """Width (= height) of the whole world in CSS pixels at ``zoom`` (fractional zooms allowed)."""
    return TILE_PX * 2.0 ** zoom


def latlon_to_world_px(lat_deg: ArrayLike, lon_deg: ArrayLike, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """World pixel coordinates (x east, y south) of points; lat clamped to +-MAX_LAT_DEG. Shapes broadcast."""
    lat = np.clip(np.asarray(lat_deg, dtype=np.float64), -MAX_LAT_DEG, MAX_LAT_DEG)
    lon = np.asarray(lon_deg, dtype=np.float64)
    size = world_size_px(zoom)
    x = size * (lon + 180.0) / 360.0
    y = size * (0.5 - np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) / (2 * np.pi))
    return x, y


def world_px_to_latlon(x: ArrayLike, y: ArrayLike, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`latlon_to_world_px`; longitudes wrapped to [-180, 180)."""
    size = world_size_px(zoom)
    lon = np.asarray(x, dtype=np.float64) / size * 360.0 - 180.0
    merc = (0.5 - np.asarray(y, dtype=np.float64) / size) * 2 * np.pi
    lat = np.degrees(2 * np.arctan(np.exp(merc)) - np.pi / 2)
    return lat, (lon + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class MapView:
    """What a map container shows: centre (degrees), zoom, container size (CSS pixels)."""

    center_lat_deg: float
    center_lon_deg: float
    zoom: float
    width_px: float
    height_px: float

    def __post_init__(self) -> None:
        if not (self.width_px > 0 and self.height_px > 0):
            raise ValueError(f"map container has no area: {self.width_px} x {self.height_px} px")
        if not (math.isfinite(self.zoom) and 0 <= self.zoom <= 30):
            raise ValueError(f"zoom must be in [0, 30], got {self.zoom!r}")


def latlon_to_container_px(lat_deg: ArrayLike, lon_deg: ArrayLike, view: MapView) -> tuple[np.ndarray, np.ndarray]:
    """Container-relative CSS pixel position (origin top-left) of points; east-west offsets take the shorter
    way round the world, so a point just across the antimeridian lands next to the centre."""
    x, y = latlon_to_world_px(lat_deg, lon_deg, view.zoom)
    cx, cy = latlon_to_world_px(view.center_lat_deg, view.center_lon_deg, view.zoom)
    size = world_size_px(view.zoom)
    dx = (x - cx + size / 2) % size - size / 2
    return view.width_px / 2 + dx, view.height_px / 2 + (y - cy)


def container_px_to_latlon(x_px: ArrayLike, y_px: ArrayLike, view: MapView) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`latlon_to_container_px` (longitudes wrapped to [-180, 180))."""
    cx, cy = latlon_to_world_px(view.center_lat_deg, view.center_lon_deg, view.zoom)
    wx = cx + np.asarray(x_px, dtype=np.float64) - view.width_px / 2
    wy = cy + np.asarray(y_px, dtype=np.float64) - view.height_px / 2
    return world_px_to_latlon(wx, wy, view.zoom)


def inside(x_px: float, y_px: float, view: MapView, margin_px: float = 0.0) -> bool:
    """Whether a container point lies at least ``margin_px`` inside the container's edges."""
    return (margin_px <= x_px <= view.width_px - margin_px) and (margin_px <= y_px <= view.height_px - margin_px)


def km_per_px(lat_deg: float, zoom: float) -> float:
    """Ground distance of one CSS pixel at latitude ``lat_deg`` and ``zoom`` (km): the pin's resolution."""
    lat = min(abs(lat_deg), MAX_LAT_DEG)
    return 2 * math.pi * EARTH_RADIUS_M / 1000.0 * math.cos(math.radians(lat)) / world_size_px(zoom)


def zoom_for_resolution(lat_deg: float, max_km_per_px: float, max_zoom: float = 18.0) -> float:
    """Smallest whole zoom at which one pixel spans at most ``max_km_per_px`` km at ``lat_deg``."""
    if max_km_per_px <= 0:
        raise ValueError(f"max_km_per_px must be positive, got {max_km_per_px!r}")
    z = math.ceil(math.log2(max(km_per_px(lat_deg, 0.0) / max_km_per_px, 1.0)))
    return float(min(z, max_zoom))


@dataclass(frozen=True)
class Calibration:
    """Screen mapping fitted from two known points when centre and zoom are unknown (docs/bot.md, "How a round
    is played"): x is linear in longitude and y is linear in the Mercator ordinate ln(tan(pi/4 + lat/2))."""

    x_per_deg: float
    x0_px: float
    y_per_merc: float
    y0_px: float

    @classmethod
    def from_points(cls, a_latlon: tuple[float, float], a_px: tuple[float, float],
                    b_latlon: tuple[float, float], b_px: tuple[float, float]) -> Calibration:
        """Fit from two (lat, lon) -> (x, y) pairs that differ in both longitude and latitude."""
        (alat, alon), (blat, blon) = a_latlon, b_latlon
        ma, mb = _merc(alat), _merc(blat)
        if abs(blon - alon) < 1e-9 or abs(mb - ma) < 1e-12:
            raise ValueError("calibration points must differ in both latitude and longitude")
        x_per_deg = (b_px[0] - a_px[0]) / (blon - alon)
        y_per_merc = (b_px[1] - a_px[1]) / (mb - ma)
        return cls(x_per_deg, a_px[0] - x_per_deg * alon, y_per_merc, a_px[1] - y_per_merc * ma)

    def to_px(self, lat_deg: float, lon_deg: float) -> tuple[float, float]:
        return self.x0_px + self.x_per_deg * lon_deg, self.y0_px + self.y_per_merc * _merc(lat_deg)

    def to_latlon(self, x_px: float, y_px: float) -> tuple[float, float]:
        merc = (y_px - self.y0_px) / self.y_per_merc
        lat = math.degrees(2 * math.atan(math.exp(merc)) - math.pi / 2)
        return lat, (x_px - self.x0_px) / self.x_per_deg


def _merc(lat_deg: float) -> float:
    lat = max(-MAX_LAT_DEG, min(MAX_LAT_DEG, lat_deg))
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
