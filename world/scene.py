"""Scenes: everything the renderer needs to know about one location, looked up in bulk in the parent process.

A :class:`Scene` is plain, picklable data. All geodata lookups (country, town, Köppen zone, land cover,
elevation, climate, the terrain profile around the point, nearby sea) happen here for all locations at once,
so worker processes only draw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from world.config import RenderConfig
from world.style import LANGUAGE_WORDS, LEFT_DRIVING, RoadStyle, road_style, sign_language

N_AZIMUTHS = 16  # terrain/sea profile bins, clockwise from north
PROFILE_DISTANCES_KM = (6.0, 15.0, 35.0)  # elevation is a ~9 km grid: nearer samples add nothing
SEA_PROBE_KM = 4.0
_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Scene:
    """One location: facts from the geodata, plus the capture month, heading and local solar hour."""

    index: int
    seed: int
    loc_id: str
    lat: float
    lon: float
    country: str
    town: str
    town_km: float  # distance to the nearest place (settlement density)
    town2: str  # a bigger nearby place, for direction signs
    town2_km: float
    town2_bearing_deg: float
    koppen: str
    land_cover: int
    elevation_m: float
    temp_avg_c: float
    temp_range_c: float  # warmest minus coldest monthly mean
    prec_avg_mm: float
    driving_side: str  # 'left' | 'right'
    month: int  # 1..12
    heading_deg: float  # compass heading of view 0 (= direction of travel)
    hour: float  # local solar time
    horizon_deg: tuple[float, ...]  # terrain elevation angle per azimuth bin
    peak_m: tuple[float, ...]  # highest terrain altitude per azimuth bin (snow caps)
    water: tuple[bool, ...]  # sea in that direction within SEA_PROBE_KM
    language: str
    script: str
    centre_word: str
    stop_word: str
    style: RoadStyle


def location_id(seed: int, index: int) -> str:
    """Opaque id: 16 hex digits of sha1(seed, index); reveals nothing about the place."""
    return hashlib.sha1(f"pigeon-world:{seed}:{index}".encode()).hexdigest()[:16]


def day_of_year(month: np.ndarray) -> np.ndarray:
    """Mid-month day of year for months 1..12."""
    return (np.asarray(month) - 1) * 30.44 + 15.0


def solar_declination_deg(doy: np.ndarray) -> np.ndarray:
    return 23.44 * np.sin(np.radians(360.0 / 365.0 * (np.asarray(doy) + 284.0)))


def sun_position(lat_deg, doy, hour) -> tuple[np.ndarray, np.ndarray]:
    """Sun (azimuth clockwise from north, elevation) in degrees for local solar ``hour``; broadcasting."""
    phi = np.radians(np.asarray(lat_deg, np.float64))
    dec = np.radians(solar_declination_deg(doy))
    ha = np.radians(15.0 * (np.asarray(hour, np.float64) - 12.0))
    sin_el = np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(ha)
    el = np.degrees(np.arcsin(np.clip(sin_el, -1, 1)))
    az = np.degrees(
        np.arctan2(
            -np.cos(dec) * np.sin(ha), np.sin(dec) * np.cos(phi) - np.cos(dec) * np.sin(phi) * np.cos(ha)
        )
    )
    return az % 360.0, el


def half_day_hours(lat_deg, doy) -> np.ndarray:
    """Half the length of daylight in hours (0 in polar night, 12 in polar day)."""
    phi = np.radians(np.clip(np.asarray(lat_deg, np.float64), -89.5, 89.5))
    dec = np.radians(solar_declination_deg(doy))
    cos_h0 = np.clip(-np.tan(phi) * np.tan(dec), -1.0, 1.0)
    return np.degrees(np.arccos(cos_h0)) / 15.0


def sample_capture(
    lat_deg: np.ndarray, cfg: RenderConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Month (1..12), heading (deg) and local solar hour per location, shape (N,) each.

    Months follow ``cfg.month_weights`` (shifted six months south of the equator); months whose noon sun
    stays below 10 degrees (polar winter) are never drawn where another month is possible."""
    lat = np.asarray(lat_deg, np.float64)
    w = np.asarray(cfg.month_weights, np.float64)
    weights = np.where(lat[:, None] >= 0, w[None, :], np.roll(w, 6)[None, :])
    months = np.arange(1, 13)
    noon_el = 90.0 - np.abs(lat[:, None] - solar_declination_deg(day_of_year(months))[None, :])
    dark = noon_el < 10.0
    weights = np.where(dark & ~dark.all(axis=1, keepdims=True), 0.0, weights)
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(lat))[:, None] * cdf[:, -1:]
    month = (u > cdf).sum(axis=1) + 1
    heading = rng.uniform(0.0, 360.0, size=len(lat))
    half = half_day_hours(lat, day_of_year(month)) * (1.0 - cfg.hour_margin)
    hour = 12.0 + rng.uniform(-1.0, 1.0, size=len(lat)) * half
    return month.astype(np.int64), np.round(heading, 1), hour


def terrain_profile(
    geo, lat: np.ndarray, lon: np.ndarray, elev0_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Terrain around each point: (horizon angle deg (N,A), highest altitude m (N,A), sea (N,A) bool)."""
    az = np.radians(np.arange(N_AZIMUTHS) * 360.0 / N_AZIMUTHS)
    n, a = len(lat), N_AZIMUTHS
    dists = np.array(PROFILE_DISTANCES_KM + (SEA_PROBE_KM,))
    coslat = np.maximum(np.cos(np.radians(lat)), 0.01)
    dlat = dists[None, None, :] * np.cos(az)[None, :, None] / 111.32
    dlon = dists[None, None, :] * np.sin(az)[None, :, None] / (111.32 * coslat[:, None, None])
    plat = np.clip(lat[:, None, None] + dlat, -89.9, 89.9)
    plon = (lon[:, None, None] + dlon + 180.0) % 360.0 - 180.0
    k = len(PROFILE_DISTANCES_KM)
    elev = np.asarray(geo.elevation_at(plat[:, :, :k].ravel(), plon[:, :, :k].ravel()), np.float64).reshape(
        n, a, k
    )
    elev = np.nan_to_num(elev, nan=0.0)
    base = np.nan_to_num(elev0_m, nan=0.0)[:, None, None]
    d_m = np.array(PROFILE_DISTANCES_KM) * 1000.0
    rise = elev - base - d_m**2 / (2 * _EARTH_RADIUS_M)  # Earth curvature hides far terrain
    angle = np.degrees(np.arctan2(rise, d_m)).max(axis=2)
    sea = (
        np.asarray(geo.koppen_at(plat[:, :, k].ravel(), plon[:, :, k].ravel())).astype(str).reshape(n, a)
        == ""
    )
    return np.clip(angle, 0.0, 30.0), elev.max(axis=2), sea


def _second_places(geo, lat: np.ndarray, lon: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Most populous of the 8 nearest places other than the nearest: (name, dist_km, bearing_deg)."""
    idx, dist = geo.nearest_place(lat, lon, k=8)
    places = geo.places
    pop = np.nan_to_num(places["population"].to_numpy(np.float64)[idx[:, 1:]], nan=0.0)
    pop = pop / (1.0 + dist[:, 1:] / 50.0)  # prefer big places but not far ones
    best = np.argmax(pop, axis=1)
    rows = np.arange(len(lat))
    pick = idx[:, 1:][rows, best]
    dist_km = dist[:, 1:][rows, best]
    plat = places["lat"].to_numpy(np.float64)[pick]
    plon = places["lon"].to_numpy(np.float64)[pick]
    y = np.sin(np.radians(plon - lon)) * np.cos(np.radians(plat))
    x = np.cos(np.radians(lat)) * np.sin(np.radians(plat)) - np.sin(np.radians(lat)) * np.cos(
        np.radians(plat)
    ) * np.cos(np.radians(plon - lon))
    bearing = np.degrees(np.arctan2(y, x)) % 360.0
    return [str(s) for s in places["name"].to_numpy()[pick]], dist_km, bearing


def _koppen_fallback(temp_avg_c: float) -> str:
    """A zone for coastal points the 3 km Köppen raster calls ocean, from the annual mean temperature."""
    return "Af" if temp_avg_c > 22 else "Cfb" if temp_avg_c > 8 else "Dfb" if temp_avg_c > -2 else "ET"


def _country_facts(geo, iso: str) -> tuple[str, str, str]:
    """(continent, CLDR languages, driving side) for a country code, tolerant of codes geodata lacks."""
    try:
        info = geo.country_info(iso)
    except (ValueError, KeyError):
        return "", "", ""
    return str(info.get("continent", "")), str(info.get("languages", "")), str(info.get("driving_side", ""))


def build_scenes(
    geo, lat: np.ndarray, lon: np.ndarray, seed: int, cfg: RenderConfig, rng: np.random.Generator
) -> tuple[list[Scene], pd.DataFrame]:
    """Scenes for all locations plus the ``geo.annotate`` table (for the CSV's auxiliary columns)."""
    ann = geo.annotate(lat, lon)
    clim = geo.climate_at(lat, lon)
    month, heading, hour = sample_capture(lat, cfg, rng)
    elev = ann["elevation_m"].to_numpy(np.float64)
    horizon, peak, sea = terrain_profile(geo, lat, lon, elev)
    town2, town2_km, town2_bearing = _second_places(geo, lat, lon)
    facts = {iso: _country_facts(geo, iso) for iso in set(ann["country"].astype(str))}
    scenes = []
    for i in range(len(lat)):
        iso = str(ann["country"].iat[i])
        continent, languages, side_default = facts[iso]
        side = str(ann["driving_side"].iat[i]) or side_default or ("left" if iso in LEFT_DRIVING else "right")
        lang = sign_language(iso, languages)
        script, centre, stop = LANGUAGE_WORDS[lang]
        lc = int(ann["land_cover"].iat[i])
        koppen = str(ann["koppen"].iat[i]) or _koppen_fallback(
            float(np.nan_to_num(clim["temp_avg_c"][i], nan=15.0))
        )
        scenes.append(
            Scene(
                index=i,
                seed=seed,
                loc_id=location_id(seed, i),
                lat=float(lat[i]),
                lon=float(lon[i]),
                country=iso,
                town=str(ann["town"].iat[i]),
                town_km=float(np.nan_to_num(ann["town_dist_km"].iat[i], nan=50.0)),
                town2=town2[i],
                town2_km=float(town2_km[i]),
                town2_bearing_deg=float(town2_bearing[i]),
                koppen=koppen,
                land_cover=lc,
                elevation_m=float(np.nan_to_num(elev[i], nan=0.0)),
                temp_avg_c=float(np.nan_to_num(clim["temp_avg_c"][i], nan=15.0)),
                temp_range_c=float(np.nan_to_num(clim["temp_diff_c"][i], nan=10.0)),
                prec_avg_mm=float(np.nan_to_num(clim["prec_avg_mm"][i], nan=800.0)),
                driving_side=side if side in ("left", "right") else "right",
                month=int(month[i]),
                heading_deg=float(heading[i]),
                hour=float(hour[i]),
                horizon_deg=tuple(np.round(horizon[i], 3).tolist()),
                peak_m=tuple(np.round(peak[i], 1).tolist()),
                water=tuple(bool(x) for x in sea[i]),
                language=lang,
                script=script,
                centre_word=centre,
                stop_word=stop,
                style=road_style(iso, continent),
            )
        )
    return scenes, ann
