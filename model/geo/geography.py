"""Spherical geometry for geolocation: distances, centroids, GeoGuessr score, label smoothing.

numpy only, pure and vectorised (torch is imported lazily inside ``pairwise_haversine_km_torch`` alone, so
``import model.geo.geography`` never loads it). Coordinates are degrees, distances kilometres on a sphere of
radius ``EARTH_RADIUS_KM`` (WGS84 equatorial, the radius PIGEON uses in every distance function).
Coordinate arrays of shape (N, 2) hold columns (lat_deg, lon_deg), in that order.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import torch

EARTH_RADIUS_KM = 6378.137
# PIGEON / OSV-5M GeoScore decay (`DECAY_CONSTANT`); GeoGuessr's own world map decays with its
# maxErrorDistance / 10 = 14,916,862 m / 10, which is 1 km shorter (scores differ by at most ~1 point).
GEOGUESSR_DECAY_KM = 1492.7
GEOGUESSR_WORLD_DECAY_KM = 1491.6862
GEOGUESSR_MAX_SCORE = 5000
ACCURACY_THRESHOLDS_KM = (1, 25, 200, 750, 2500)
PIGEON_SMOOTHING_TAU_KM = 75.0

# Pairwise work is done in row blocks of at most this many (float64) elements: temporaries stay ~2 MiB
# whatever N * M is (only the result scales with N * M), and blocks that fit in cache measured ~15% faster
# than 32 MiB ones on 2000 x 20000.
_CHUNK_ELEMS = 1 << 18
# A weighted mean of unit vectors shorter than this has no meaningful direction (points cancel out).
_DEGENERATE_NORM = 1e-9
_MAX_LISTED = 5


def _as_float_array(x: ArrayLike, name: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric, got {x!r}") from e


def _check_range(values: np.ndarray, what: str, limit: float) -> None:
    bad = ~(np.abs(values) <= limit)  # NaN compares False, so NaN lands in `bad` as well
    if not bad.any():
        return
    flat, idx = values.reshape(-1), np.flatnonzero(bad)
    listed = ", ".join(f"{float(flat[i])!r} (index {int(i)})" for i in idx[:_MAX_LISTED])
    more = f" and {idx.size - _MAX_LISTED} more" if idx.size > _MAX_LISTED else ""
    raise ValueError(f"invalid {what}: {listed}{more}; must be finite degrees in [-{limit:g}, {limit:g}]")


def _validate(lat_deg: ArrayLike, lon_deg: ArrayLike, label: str = "") -> tuple[np.ndarray, np.ndarray]:
    prefix = f"{label} " if label else ""
    lat = _as_float_array(lat_deg, f"{prefix}lat_deg")
    lon = _as_float_array(lon_deg, f"{prefix}lon_deg")
    _check_range(lat, f"{prefix}latitude", 90.0)
    _check_range(lon, f"{prefix}longitude", 180.0)
    return lat, lon


def validate_latlon(lat_deg: ArrayLike, lon_deg: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Check coordinates and return them as float64 arrays (shapes unchanged).

    Raises ValueError naming the offending values (and their flat indices) if any latitude is not finite or
    outside [-90, 90], or any longitude is not finite or outside [-180, 180].
    """
    return _validate(lat_deg, lon_deg)


def _latlon_array(latlon_deg: ArrayLike, name: str) -> np.ndarray:
    arr = _as_float_array(latlon_deg, name)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) with columns (lat_deg, lon_deg), got {arr.shape}")
    _validate(arr[:, 0], arr[:, 1], name)
    return arr


def wrap_lon(lon_deg: ArrayLike) -> np.ndarray:
    """Wrap longitudes (any shape, degrees) into [-180, 180). NaN stays NaN."""
    lon = _as_float_array(lon_deg, "lon_deg")
    wrapped = np.mod(lon + 180.0, 360.0) - 180.0
    # np.mod of a tiny negative number can round up to exactly 360, i.e. +180 here
    return np.where(wrapped >= 180.0, wrapped - 360.0, wrapped)


def haversine_km(
    lat1_deg: ArrayLike, lon1_deg: ArrayLike, lat2_deg: ArrayLike, lon2_deg: ArrayLike
) -> np.ndarray:
    """Great-circle distance in km between points 1 and 2; inputs broadcast against each other."""
    lat1, lon1 = _validate(lat1_deg, lon1_deg, "point 1")
    lat2, lon2 = _validate(lat2_deg, lon2_deg, "point 2")
    try:
        np.broadcast_shapes(lat1.shape, lon1.shape, lat2.shape, lon2.shape)
    except ValueError as e:
        shapes = (lat1.shape, lon1.shape, lat2.shape, lon2.shape)
        raise ValueError(f"haversine_km: shapes {shapes} of lat1, lon1, lat2, lon2 do not broadcast") from e
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    sin_dphi = np.sin((phi2 - phi1) * 0.5)
    sin_dlam = np.sin(np.radians(lon2 - lon1) * 0.5)
    a = sin_dphi * sin_dphi + np.cos(phi1) * np.cos(phi2) * sin_dlam * sin_dlam
    # rounding can push `a` a hair past 1 for antipodal points; arcsin would return NaN
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def latlon_to_xyz(lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
    """Unit vectors (..., 3) for broadcast lat/lon (degrees); x towards (0, 0), z towards the north pole."""
    lat, lon = _validate(lat_deg, lon_deg)
    phi, lam = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    x, y, z = np.broadcast_arrays(cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi))
    return np.stack([x, y, z], axis=-1)


def xyz_to_latlon(xyz: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``latlon_to_xyz``: vectors (..., 3), any positive length -> (lat_deg, lon_deg), each (...).

    Longitudes are in [-180, 180); at the poles the longitude is 0.
    """
    v = _as_float_array(xyz, "xyz")
    if v.ndim == 0 or v.shape[-1] != 3:
        raise ValueError(f"xyz must have shape (..., 3), got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("xyz contains non-finite values")
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return lat, wrap_lon(np.degrees(np.arctan2(y, x)))


def _pairwise_xyz_km(xa: np.ndarray, xb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Distances (n, m) km between unit vectors xa (n, 3) and xb (m, 3), written into ``out``.

    Works on the chord |a - b| rather than the dot product: 1 - a.b cancels catastrophically for points a few
    metres apart, the coordinate differences do not. Needs only one sqrt and one arcsin per element.
    """
    tmp = np.empty_like(out)
    np.subtract(xa[:, 0, None], xb[None, :, 0], out=out)
    np.square(out, out=out)
    for k in (1, 2):
        np.subtract(xa[:, k, None], xb[None, :, k], out=tmp)
        np.square(tmp, out=tmp)
        out += tmp
    np.sqrt(out, out=out)
    out *= 0.5
    np.minimum(out, 1.0, out=out)  # rounding near antipodes
    np.arcsin(out, out=out)
    out *= 2.0 * EARTH_RADIUS_KM
    return out


def pairwise_haversine_km(a_latlon_deg: ArrayLike, b_latlon_deg: ArrayLike | None = None) -> np.ndarray:
    """Distance matrix (N, M) float64 km between rows of a (N, 2) and b (M, 2); b defaults to a."""
    a = _latlon_array(a_latlon_deg, "a_latlon_deg")
    b = a if b_latlon_deg is None else _latlon_array(b_latlon_deg, "b_latlon_deg")
    xa, xb = latlon_to_xyz(a[:, 0], a[:, 1]), latlon_to_xyz(b[:, 0], b[:, 1])
    out = np.empty((len(a), len(b)), dtype=np.float64)
    rows = max(1, _CHUNK_ELEMS // max(len(b), 1))
    for start in range(0, len(a), rows):
        _pairwise_xyz_km(xa[start : start + rows], xb, out[start : start + rows])
    return out


def _torch_latlon(t: torch.Tensor, name: str) -> torch.Tensor:
    import torch

    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 2 or t.shape[1] != 2:
        raise ValueError(
            f"{name} must have shape (N, 2) with columns (lat_deg, lon_deg), got {tuple(t.shape)}"
        )
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    ok = (t[:, 0].abs() <= 90.0) & (t[:, 1].abs() <= 180.0)  # False for NaN as well
    if not bool(ok.all()):
        _latlon_array(t.detach().cpu().double().numpy(), name)  # raises, naming the bad values
    return t


def pairwise_haversine_km_torch(
    a_latlon_deg: torch.Tensor, b_latlon_deg: torch.Tensor | None = None
) -> torch.Tensor:
    """Distance matrix (N, M) km between rows of tensors a (N, 2) and b (M, 2) (b defaults to a).

    Stays on the inputs' device and dtype (integer input is cast to torch's default float dtype). Same chord
    formulation as ``pairwise_haversine_km``; differentiable except at zero and antipodal distances.
    """
    import torch  # lazy: model.geo.geography must import without torch

    a = _torch_latlon(a_latlon_deg, "a_latlon_deg")
    b = a if b_latlon_deg is None else _torch_latlon(b_latlon_deg, "b_latlon_deg")
    if b.dtype != a.dtype:
        b = b.to(a.dtype)

    def xyz(t: torch.Tensor) -> torch.Tensor:
        phi, lam = torch.deg2rad(t[:, 0]), torch.deg2rad(t[:, 1])
        return torch.stack([phi.cos() * lam.cos(), phi.cos() * lam.sin(), phi.sin()], dim=-1)

    # the matmul path of cdist is fast but computes |a|^2 + |b|^2 - 2ab, which cancels for short distances
    chord = torch.cdist(xyz(a), xyz(b), compute_mode="donot_use_mm_for_euclid_dist")
    return 2.0 * EARTH_RADIUS_KM * torch.asin((chord * 0.5).clamp(max=1.0))


def spherical_centroid(
    lat_deg: ArrayLike, lon_deg: ArrayLike, weights: ArrayLike | None = None
) -> tuple[float, float]:
    """Centroid (lat_deg, lon_deg) of points on the sphere: direction of the (weighted) mean unit vector.

    Unlike averaging degrees this is right across the antimeridian and near the poles. Inputs are flattened;
    ``weights`` (same shape, non-negative, not all zero) default to equal. Raises ValueError when the mean
    vector vanishes (e.g. two antipodal points), where no centroid is defined.
    """
    lat, lon = _validate(lat_deg, lon_deg)
    if lat.shape != lon.shape:
        raise ValueError(f"lat_deg and lon_deg must have the same shape, got {lat.shape} and {lon.shape}")
    if lat.size == 0:
        raise ValueError("spherical_centroid needs at least one point, got none")
    xyz = latlon_to_xyz(lat.reshape(-1), lon.reshape(-1))
    if weights is None:
        w = np.full(lat.size, 1.0 / lat.size)
    else:
        w = _as_float_array(weights, "weights").reshape(-1)
        if w.size != lat.size:
            raise ValueError(f"weights has {w.size} values for {lat.size} points")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        w = w / w.sum()
    mean = w @ xyz
    norm = float(np.linalg.norm(mean))
    if norm < _DEGENERATE_NORM:
        raise ValueError(
            f"spherical centroid undefined: the points' unit vectors cancel out (mean length {norm:.3g}), "
            "e.g. antipodal points"
        )
    lat_c, lon_c = xyz_to_latlon(mean / norm)
    return float(lat_c), float(lon_c)


def _distances(dist_km: ArrayLike) -> np.ndarray:
    d = _as_float_array(dist_km, "dist_km")
    bad = ~(d >= 0) | ~np.isfinite(d)
    if bad.any():
        values = ", ".join(repr(float(v)) for v in d.reshape(-1)[np.flatnonzero(bad)][:_MAX_LISTED])
        raise ValueError(f"dist_km must be finite and >= 0, got {values}")
    return d


def geoguessr_score(dist_km: ArrayLike, decay_km: float = GEOGUESSR_DECAY_KM) -> np.ndarray:
    """GeoGuessr points per round, int64 array shaped like ``dist_km``: round(5000 * exp(-d / decay_km)).

    The default decay is PIGEON's 1492.7 km; pass ``GEOGUESSR_WORLD_DECAY_KM`` to mirror the live world map.
    """
    if not (np.isfinite(decay_km) and decay_km > 0):
        raise ValueError(f"decay_km must be finite and > 0, got {decay_km!r}")
    d = _distances(dist_km)
    return np.rint(GEOGUESSR_MAX_SCORE * np.exp(-d / decay_km)).astype(np.int64)


def threshold_accuracies(
    dist_km: ArrayLike, thresholds_km: tuple[float, ...] = ACCURACY_THRESHOLDS_KM
) -> dict[str, float]:
    """Fraction of errors strictly below each threshold, keyed by the threshold as text ("1", "25", ...)."""
    d = _distances(dist_km).reshape(-1)
    if d.size == 0:
        raise ValueError("threshold_accuracies needs at least one distance, got none")
    return {f"{t:g}": float(np.mean(d < t)) for t in thresholds_km}


def haversine_smoothed_targets(
    true_latlon_deg: ArrayLike,
    cell_centroids_deg: ArrayLike,
    tau_km: float = PIGEON_SMOOTHING_TAU_KM,
    *,
    normalize: bool = True,
    max_chunk_elems: int = _CHUNK_ELEMS,
) -> np.ndarray:
    """PIGEON haversine label smoothing: soft targets (N, C) float32 over C geocells for N true locations.

    target[n, i] ∝ exp(-(hav(g_i, x_n) - hav(g_n, x_n)) / tau_km) with x_n (N, 2) the true locations and g_i
    (C, 2) the cell centroids, both (lat_deg, lon_deg). After normalising each row to sum 1 the offset
    hav(g_n, x_n) cancels, so the true cell's distance (paper) and the nearest centroid's (PIGEON code) give
    the same targets; the nearest is subtracted because it keeps every exponent <= 0 (no overflow for any C,
    row sums >= 1, no 0/0). ``normalize=False`` returns the PIGEON code's raw targets (nearest cell = 1).
    Rows are computed in blocks of about ``max_chunk_elems`` elements to bound float64 temporaries.
    """
    if not (np.isfinite(tau_km) and tau_km > 0):
        raise ValueError(f"tau_km must be finite and > 0, got {tau_km!r}")
    if max_chunk_elems < 1:
        raise ValueError(f"max_chunk_elems must be >= 1, got {max_chunk_elems!r}")
    x = _latlon_array(true_latlon_deg, "true_latlon_deg")
    g = _latlon_array(cell_centroids_deg, "cell_centroids_deg")
    if len(g) == 0:
        raise ValueError("cell_centroids_deg is empty: need at least one cell")
    xx, xg = latlon_to_xyz(x[:, 0], x[:, 1]), latlon_to_xyz(g[:, 0], g[:, 1])
    out = np.empty((len(x), len(g)), dtype=np.float32)
    rows = max(1, max_chunk_elems // len(g))
    for start in range(0, len(x), rows):
        block = slice(start, start + rows)
        d = _pairwise_xyz_km(xx[block], xg, np.empty((len(xx[block]), len(g))))
        d -= d.min(axis=1, keepdims=True)
        d *= -1.0 / tau_km
        np.exp(d, out=d)
        if normalize:
            d /= d.sum(axis=1, keepdims=True)
        out[block] = d
    return out
