"""Where the synthetic world's locations fall, and which split each belongs to.

Sampling imitates street-view coverage: a GeoNames place is drawn with weight ``max(pop, floor) ** alpha``
(rescaled per country by ``country_balance``), the location is jittered a few km from it, and candidates at
sea (``country_at == ''``) or outside the allowed countries are rejected.

Held-out splits: the globe is cut into ``block_deg`` x ``block_deg`` lat/lon blocks and each block is given
to train, val or test by a seeded hash, so whole areas are unseen in training. A block border does not keep
two points apart, so afterwards every val/test location closer than ``min_km`` to a train location is moved
to train (repeated until none is), which guarantees ``distance(val/test, train) >= min_km``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from world.config import SamplerConfig, SplitConfig

log = logging.getLogger(__name__)
_KM_PER_DEG = 111.32
_EARTH_RADIUS_KM = 6371.0088  # mean radius, for the BallTree's haversine metric


def allowed_countries(cfg: SamplerConfig, known_iso_a2: set[str]) -> tuple[str, ...]:
    """The country filter with every code checked against ``known_iso_a2`` (geodata's countries)."""
    for name in ("countries", "include", "exclude"):
        unknown = sorted(set(getattr(cfg, name)) - known_iso_a2)
        # the default coverage list may name territories missing from the polygons: skip those quietly,
        # but codes the user typed in include/exclude must exist
        if unknown and name != "countries":
            raise ValueError(
                f"unknown country code(s) {', '.join(unknown)} in sampler.{name} "
                f"(not in the country polygons; use ISO 3166-1 alpha-2 codes such as FR, JP)"
            )
        if unknown:
            log.debug("sampler.countries: no polygons for %s; skipped", ", ".join(unknown))
    allowed = tuple(c for c in cfg.allowed() if c in known_iso_a2)
    if (cfg.countries or cfg.include) and not allowed:
        raise ValueError(
            "the country filter leaves no country to sample from (check sampler.countries/exclude)"
        )
    return allowed


def place_weights(population: np.ndarray, cc: np.ndarray, cfg: SamplerConfig) -> np.ndarray:
    """Normalised sampling weight per place, shape (P,) -> (P,)."""
    pop = np.maximum(np.nan_to_num(population.astype(np.float64), nan=0.0), cfg.population_floor)
    w = pop**cfg.population_alpha
    if cfg.country_balance > 0:
        codes, inverse = np.unique(cc, return_inverse=True)
        totals = np.bincount(inverse, weights=w, minlength=len(codes))
        w = w * totals[inverse] ** (-cfg.country_balance)
    return w / w.sum()


def jitter(
    lat_deg: np.ndarray, lon_deg: np.ndarray, mean_km: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Move each point by an exponential distance (mean ``mean_km``) in a uniform direction."""
    dist_km = rng.exponential(mean_km, size=lat_deg.shape) if mean_km > 0 else np.zeros_like(lat_deg)
    bearing = rng.uniform(0, 2 * np.pi, size=lat_deg.shape)
    lat = np.clip(lat_deg + dist_km * np.cos(bearing) / _KM_PER_DEG, -89.9, 89.9)
    coslat = np.maximum(np.cos(np.radians(lat)), 0.01)
    lon = (lon_deg + dist_km * np.sin(bearing) / (_KM_PER_DEG * coslat) + 180.0) % 360.0 - 180.0
    return lat, lon


def sample_locations(
    geo, cfg: SamplerConfig, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` land locations near places of allowed countries.

    Returns (lat_deg (n,), lon_deg (n,), place_idx (n,) rows of ``geo.places``)."""
    if n < 1:
        raise ValueError(f"number of locations must be at least 1, got {n}")
    places = geo.places
    known = set(str(c) for c in geo.countries["iso_a2"])
    allowed = allowed_countries(cfg, known)
    cc = places["cc"].to_numpy().astype(str)
    pool = np.flatnonzero(np.isin(cc, allowed)) if allowed else np.arange(len(places))
    if len(pool) == 0:
        raise ValueError(f"no GeoNames place lies in the allowed countries {', '.join(allowed)}")
    weights = place_weights(places["population"].to_numpy()[pool], cc[pool], cfg)
    plat = places["lat"].to_numpy(np.float64)[pool]
    plon = places["lon"].to_numpy(np.float64)[pool]
    allowed_set = np.array(allowed)
    got_lat, got_lon, got_idx, have = [], [], [], 0
    for _ in range(30):
        m = int(math.ceil((n - have) * cfg.oversample)) + 8
        pick = rng.choice(len(pool), size=m, p=weights)
        lat, lon = jitter(plat[pick], plon[pick], cfg.jitter_km, rng)
        country = np.asarray(geo.country_at(lat, lon)).astype(str)
        ok = np.isin(country, allowed_set) if allowed else country != ""
        got_lat.append(lat[ok])
        got_lon.append(lon[ok])
        got_idx.append(pool[pick[ok]])
        have += int(ok.sum())
        if have >= n:
            break
    if have < n:
        raise ValueError(f"could only place {have} of {n} locations on land in the allowed countries")
    return tuple(np.concatenate(parts)[:n] for parts in (got_lat, got_lon, got_idx))  # type: ignore[return-value]


def _block_hash(i: np.ndarray, j: np.ndarray, seed: int) -> np.ndarray:
    """Uniform [0, 1) per (block row, block column, seed) from splitmix64, vectorised."""
    x = (i.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        j.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    )
    x = x ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_splits(lat_deg: np.ndarray, lon_deg: np.ndarray, seed: int, cfg: SplitConfig) -> np.ndarray:
    """Split name per location, shape (N,) of str; val/test are >= ``cfg.min_km`` from any train location."""
    lat = np.asarray(lat_deg, np.float64)
    lon = np.asarray(lon_deg, np.float64)
    bi = np.floor((lat + 90.0) / cfg.block_deg).astype(np.int64)
    bj = np.floor(((lon + 180.0) % 360.0) / cfg.block_deg).astype(np.int64)
    u = _block_hash(bi, bj, seed)
    split = np.full(lat.shape, "train", dtype="<U5")
    split[u < cfg.test_fraction + cfg.val_fraction] = "val"
    split[u < cfg.test_fraction] = "test"
    if cfg.min_km > 0:
        enforce_min_distance(lat, lon, split, cfg.min_km)
    return split


def enforce_min_distance(lat_deg: np.ndarray, lon_deg: np.ndarray, split: np.ndarray, min_km: float) -> int:
    """Move held-out locations closer than ``min_km`` to a train location into train, in place, until the
    condition holds for all; returns how many moved."""
    from sklearn.neighbors import BallTree

    rad = np.radians(np.stack([lat_deg, lon_deg], axis=1))
    moved = 0
    while True:
        train = split == "train"
        held = np.flatnonzero(~train)
        if not train.any() or len(held) == 0:
            return moved
        tree = BallTree(rad[train], metric="haversine")
        dist_km = tree.query(rad[held], k=1)[0][:, 0] * _EARTH_RADIUS_KM
        close = held[dist_km < min_km]
        if len(close) == 0:
            return moved
        split[close] = "train"
        moved += len(close)
