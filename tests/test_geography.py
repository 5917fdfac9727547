"""model.geo.geography against geopy (the oracle), closed forms and the GeoGuessr score table."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from geopy.distance import great_circle

from model.geo import geography as geo

R = 6378.137  # PIGEON's radius (WGS84 equatorial), pinned here rather than read from the module under test


def _random_points(rng: np.random.Generator, n: int) -> np.ndarray:
    """n points uniform on the sphere, (n, 2) lat/lon degrees."""
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lon = rng.uniform(-180.0, 180.0, n)
    return np.stack([lat, lon], axis=1)


def _hard_pairs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) pairs (n, 2): uniform, antipodal-ish, polar, across the antimeridian, and nearly coincident."""
    a_uni, b_uni = _random_points(rng, 2000), _random_points(rng, 2000)
    # antipodal-ish: the antipode of a, nudged by up to ~1e-4 degrees (some pairs exactly antipodal)
    a_ant = _random_points(rng, 400)
    b_ant = np.stack([-a_ant[:, 0], geo.wrap_lon(a_ant[:, 1] + 180.0)], axis=1)
    b_ant[200:] += rng.uniform(-1e-4, 1e-4, (200, 2))
    b_ant[:, 0] = np.clip(b_ant[:, 0], -90, 90)
    b_ant[:, 1] = geo.wrap_lon(b_ant[:, 1])
    # poles: exact and near-pole latitudes, any longitude
    pole_lat = rng.choice([90.0, -90.0, 89.99999, -89.99999, 89.5], 400)
    a_pole = np.stack([pole_lat, rng.uniform(-180, 180, 400)], axis=1)
    b_pole = np.concatenate([_random_points(rng, 200), a_pole[200:] * [-1, 1]])
    # antimeridian: both sides of +-180, including exactly -180 and 180
    lon_w = rng.choice([180.0, -180.0, 179.9999, -179.9999, 179.0], 400)
    a_am = np.stack([rng.uniform(-80, 80, 400), lon_w], axis=1)
    b_am = np.stack([a_am[:, 0] + rng.uniform(-1, 1, 400), -lon_w], axis=1)
    # nearly coincident: offsets down to ~1 mm
    a_near = _random_points(rng, 400) * [0.99, 1.0]
    b_near = a_near + rng.uniform(-1, 1, (400, 2)) * 10.0 ** rng.uniform(-8, -2, (400, 1))
    b_near[:, 1] = geo.wrap_lon(b_near[:, 1])
    a = np.concatenate([a_uni, a_ant, a_pole, a_am, a_near])
    b = np.concatenate([b_uni, b_ant, b_pole, b_am, b_near])
    return a, b


def _geopy_km(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([great_circle(tuple(p), tuple(q), radius=R).km for p, q in zip(a, b)])


# ---------------------------------------------------------------------------------------------- distances
def test_haversine_matches_geopy_on_hard_pairs() -> None:
    assert geo.EARTH_RADIUS_KM == R
    a, b = _hard_pairs(np.random.default_rng(0))
    ours = geo.haversine_km(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    np.testing.assert_allclose(ours, _geopy_km(a, b), rtol=1e-6, atol=1e-9)
    assert ours.max() == pytest.approx(math.pi * R, rel=1e-9)  # the exact antipodes are in the set


def test_haversine_closed_forms_and_broadcasting() -> None:
    assert geo.haversine_km(0, 0, 0, 90) == pytest.approx(math.pi * R / 2, rel=1e-12)
    assert geo.haversine_km(90, 0, -90, 123) == pytest.approx(math.pi * R, rel=1e-12)
    assert geo.haversine_km(10, 180, 10, -180) == pytest.approx(0.0, abs=1e-9)
    assert geo.haversine_km(0, 179.5, 0, -179.5) == pytest.approx(math.pi * R / 180, rel=1e-12)
    d = geo.haversine_km(np.zeros((3, 1)), 0.0, 0.0, np.array([0.0, 1.0, 2.0, 3.0]))
    assert d.shape == (3, 4) and np.allclose(d[0], np.arange(4) * math.pi * R / 180)
    with pytest.raises(ValueError, match="do not broadcast"):
        geo.haversine_km(np.zeros(3), np.zeros(3), np.zeros(4), np.zeros(4))


def test_pairwise_matches_geopy_and_elementwise() -> None:
    a, b = _hard_pairs(np.random.default_rng(1))
    rows, cols = a[::60], b[::30]
    d = geo.pairwise_haversine_km(rows, cols)
    assert d.shape == (len(rows), len(cols)) and d.dtype == np.float64
    i, j = np.meshgrid(np.arange(len(rows)), np.arange(len(cols)), indexing="ij")
    oracle = _geopy_km(rows[i.ravel()], cols[j.ravel()]).reshape(d.shape)
    np.testing.assert_allclose(d, oracle, rtol=1e-6, atol=1e-8)
    # past the first 2000 uniform pairs, the diagonal holds the hard cases (antipodes, poles, mm offsets)
    hard_a, hard_b = a[2000:], b[2000:]
    diag = geo.pairwise_haversine_km(hard_a, hard_b).diagonal()
    np.testing.assert_allclose(diag, _geopy_km(hard_a, hard_b), rtol=1e-6, atol=1e-9)


def test_pairwise_self_is_symmetric_with_zero_diagonal() -> None:
    pts = _random_points(np.random.default_rng(2), 50)
    d = geo.pairwise_haversine_km(pts)
    # exact: (a - b)^2 == (b - a)^2 in IEEE arithmetic and the three squares are summed in one fixed order
    assert np.array_equal(d, d.T) and np.all(d.diagonal() == 0.0)
    assert geo.pairwise_haversine_km(pts, np.empty((0, 2))).shape == (50, 0)


def test_pairwise_chunking_matches_single_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    a, b = _random_points(rng, 37), _random_points(rng, 11)
    full = geo.pairwise_haversine_km(a, b)
    # exact: each element is computed by the same element-wise ufuncs whatever the block (no BLAS, no reduction)
    monkeypatch.setattr(geo, "_CHUNK_ELEMS", 25)  # 2 rows per block, last block partial
    assert np.array_equal(geo.pairwise_haversine_km(a, b), full)


def test_pairwise_torch_equals_numpy() -> None:
    torch = pytest.importorskip("torch")
    a, b = _hard_pairs(np.random.default_rng(4))
    a, b = a[1998:], b[2000:]  # a few uniform rows, then the hard pairs on the (shifted) diagonal
    ref = geo.pairwise_haversine_km(a, b)
    out64 = geo.pairwise_haversine_km_torch(torch.from_numpy(a), torch.from_numpy(b))
    assert out64.dtype == torch.float64 and tuple(out64.shape) == ref.shape
    # rtol: at exact antipodes asin's slope turns one-ulp differences into ~1e-8 relative
    np.testing.assert_allclose(out64.numpy(), ref, rtol=1e-7, atol=1e-9)
    # float32 keeps its dtype; asin near the antipode amplifies float32 rounding to ~km, hence the loose atol
    out32 = geo.pairwise_haversine_km_torch(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), ref, rtol=1e-4, atol=5.0)
    same = geo.pairwise_haversine_km_torch(torch.from_numpy(a))
    np.testing.assert_allclose(same.numpy(), geo.pairwise_haversine_km(a), rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="latitude.*95.0"):
        geo.pairwise_haversine_km_torch(torch.tensor([[95.0, 0.0]]), torch.from_numpy(b))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        geo.pairwise_haversine_km_torch(torch.zeros(3, 3))


def test_import_does_not_load_torch() -> None:
    code = "import sys, model.geo.geography; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ----------------------------------------------------------------------------------- vectors, centroids
def test_xyz_round_trip_and_axes() -> None:
    pts = _random_points(np.random.default_rng(5), 1000)
    xyz = geo.latlon_to_xyz(pts[:, 0], pts[:, 1])
    assert xyz.shape == (1000, 3) and np.allclose(np.linalg.norm(xyz, axis=1), 1.0)
    lat, lon = geo.xyz_to_latlon(xyz * 3.0)  # length does not matter
    np.testing.assert_allclose(lat, pts[:, 0], atol=1e-9)
    np.testing.assert_allclose(geo.haversine_km(lat, lon, pts[:, 0], pts[:, 1]), 0.0, atol=1e-6)
    assert np.allclose(geo.latlon_to_xyz(0, 0), [1, 0, 0])
    assert np.allclose(geo.latlon_to_xyz(90, 0), [0, 0, 1])
    assert np.allclose(geo.latlon_to_xyz(0, 90), [0, 1, 0])
    lat, lon = geo.xyz_to_latlon([-1.0, 0.0, 0.0])
    assert lat == 0.0 and lon == -180.0  # [-180, 180)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        geo.xyz_to_latlon(np.zeros((4, 2)))


def test_centroid_straddling_antimeridian_lands_near_180() -> None:
    lat, lon = geo.spherical_centroid([10.0, 12.0, 11.0, 9.0], [179.0, -179.0, 179.5, -179.5])
    assert abs(lon) > 179.9, lon  # a naive mean of degrees would give 0
    assert lat == pytest.approx(10.5, abs=0.01)
    assert -180.0 <= lon < 180.0


def test_centroid_basic_cases_and_weights() -> None:
    assert geo.spherical_centroid([0.0, 0.0], [-10.0, 10.0]) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert geo.spherical_centroid([48.85], [2.35]) == pytest.approx((48.85, 2.35), abs=1e-9)
    lat, _ = geo.spherical_centroid([80.0, 80.0, 80.0], [0.0, 120.0, -120.0])
    assert lat == pytest.approx(90.0, abs=1e-6)
    # a heavier point pulls the centroid towards it; zero weight drops a point
    _, lon = geo.spherical_centroid([0.0, 0.0], [0.0, 20.0], weights=[3.0, 1.0])
    assert 0.0 < lon < 10.0
    assert geo.spherical_centroid([0.0, 0.0], [0.0, 20.0], weights=[0.0, 2.0]) == pytest.approx((0.0, 20.0))


def test_centroid_degenerate_and_bad_weights_raise() -> None:
    with pytest.raises(ValueError, match="antipodal"):
        geo.spherical_centroid([0.0, 0.0], [0.0, 180.0])
    with pytest.raises(ValueError, match="antipodal"):
        geo.spherical_centroid([90.0, -90.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="at least one point"):
        geo.spherical_centroid([], [])
    with pytest.raises(ValueError, match="weights"):
        geo.spherical_centroid([0.0, 1.0], [0.0, 1.0], weights=[-1.0, 2.0])
    with pytest.raises(ValueError, match="weights has 3 values for 2 points"):
        geo.spherical_centroid([0.0, 1.0], [0.0, 1.0], weights=[1.0, 1.0, 1.0])


# ------------------------------------------------------------------------------------ validation, wrap
@pytest.mark.parametrize(
    ("lat", "lon", "pattern"),
    [
        ([0.0, np.nan], [0.0, 0.0], r"latitude: nan \(index 1\)"),
        ([0.0], [np.inf], r"longitude: inf \(index 0\)"),
        (90.5, 0.0, r"latitude: 90\.5"),
        ([1.0, 2.0], [-180.01, 3.0], r"longitude: -180\.01 \(index 0\)"),
    ],
)
def test_validate_latlon_names_bad_values(lat: object, lon: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        geo.validate_latlon(lat, lon)


def test_validate_latlon_accepts_edges_and_is_used_everywhere() -> None:
    lat, lon = geo.validate_latlon([-90, 90], [-180, 180])
    assert lat.dtype == np.float64 and lon.tolist() == [-180.0, 180.0]
    with pytest.raises(ValueError, match="and 2 more"):
        geo.validate_latlon(np.full(7, 100.0), np.zeros(7))
    with pytest.raises(ValueError, match="latitude"):
        geo.haversine_km(91, 0, 0, 0)
    with pytest.raises(ValueError, match="b_latlon_deg longitude: 200.0"):
        geo.pairwise_haversine_km([[0, 0]], [[0, 200]])
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        geo.pairwise_haversine_km(np.zeros(4))


def test_wrap_lon() -> None:
    out = geo.wrap_lon([180.0, -180.0, 540.0, -190.0, 190.0, 0.0, -1e-15, 359.999])
    np.testing.assert_allclose(out, [-180.0, -180.0, -180.0, 170.0, -170.0, 0.0, -1e-15, -0.001], atol=1e-9)
    # just below -180: np.mod rounds up to exactly 360, which must still come out as -180, not +180
    assert geo.wrap_lon(np.nextafter(-180.0, -np.inf)) == -180.0
    big = geo.wrap_lon(np.random.default_rng(6).uniform(-1e4, 1e4, 10000))
    assert big.min() >= -180.0 and big.max() < 180.0


# -------------------------------------------------------------------------------------- score, metrics
def test_geoguessr_score_pigeon_formula() -> None:
    d = np.array([0.0, 1.0, 25.0, 750.0, 2500.0])
    # round(5000 * exp(-d / 1492.7)); 750 km -> 3025.25, 2500 km -> 936.71
    assert geo.geoguessr_score(d).tolist() == [5000, 4997, 4917, 3025, 937]
    s = geo.geoguessr_score(np.array([[0.0, 20000.0]]))
    assert s.shape == (1, 2) and s.dtype == np.int64 and s[0, 1] == 0
    assert geo.geoguessr_score(0.0) == 5000


def test_geoguessr_score_world_map_reference_table() -> None:
    # live world map, decay = maxErrorDistance 14,916,862 m / 10 (docs/method.md, "GeoGuessr facts used by the
    # bot and the arena"; public: tzhf/chatguessr src/main/utils/gameHelper.ts)
    table = {1: 4997, 25: 4917, 100: 4676, 200: 4373, 750: 3024, 1000: 2558, 2500: 936, 5000: 175, 0: 5000}
    scores = geo.geoguessr_score(np.array(list(table)), decay_km=geo.GEOGUESSR_WORLD_DECAY_KM)
    assert dict(zip(table, scores.tolist())) == table


def test_geoguessr_score_rejects_bad_distances() -> None:
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="dist_km"):
            geo.geoguessr_score([1.0, bad])
    with pytest.raises(ValueError, match="decay_km"):
        geo.geoguessr_score(1.0, decay_km=0.0)


def test_threshold_accuracies() -> None:
    d = np.array([0.5, 1.0, 24.9, 25.0, 199.0, 800.0, 3000.0, 2499.0])
    acc = geo.threshold_accuracies(d)
    assert list(acc) == ["1", "25", "200", "750", "2500"]
    # strictly below the threshold counts: 1.0 is not within 1 km, 25.0 not within 25 km
    assert acc == {"1": 1 / 8, "25": 3 / 8, "200": 5 / 8, "750": 5 / 8, "2500": 7 / 8}
    assert geo.threshold_accuracies([10.0], thresholds_km=(0.5, 10.5)) == {"0.5": 0.0, "10.5": 1.0}
    with pytest.raises(ValueError, match="at least one"):
        geo.threshold_accuracies([])


# ---------------------------------------------------------------------------------- label smoothing
def _cells_and_points(rng: np.random.Generator, n_cells: int, n_points: int) -> tuple[np.ndarray, ...]:
    cells = _random_points(rng, n_cells)
    true_cell = rng.integers(0, n_cells, n_points)
    pts = cells[true_cell] + rng.normal(0, 0.05, (n_points, 2))  # within a few km of their cell centroid
    pts[:, 0] = np.clip(pts[:, 0], -90, 90)
    pts[:, 1] = geo.wrap_lon(pts[:, 1])
    return cells, pts, true_cell


def test_smoothing_rows_sum_to_one_and_true_cell_is_max() -> None:
    cells, pts, true_cell = _cells_and_points(np.random.default_rng(7), 300, 64)
    t = geo.haversine_smoothed_targets(pts, cells)
    assert t.shape == (64, 300) and t.dtype == np.float32
    np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(t.argmax(axis=1), true_cell)
    assert (t >= 0).all() and np.isfinite(t).all()


def test_smoothing_matches_pigeon_formula() -> None:
    cells, pts, true_cell = _cells_and_points(np.random.default_rng(8), 40, 10)
    d = np.array([[great_circle(tuple(p), tuple(c), radius=R).km for c in cells] for p in pts])
    d_true = d[np.arange(10), true_cell][:, None]  # the paper's offset: distance to the true cell
    expected = np.exp(-(d - d_true) / 30.0)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(geo.haversine_smoothed_targets(pts, cells, tau_km=30.0), expected, atol=1e-6)
    raw = geo.haversine_smoothed_targets(pts, cells, tau_km=30.0, normalize=False)  # PIGEON code: nearest = 1
    np.testing.assert_allclose(raw, np.exp(-(d - d.min(axis=1, keepdims=True)) / 30.0), rtol=1e-5, atol=1e-7)
    assert np.all(raw.max(axis=1) == 1.0)


def test_smoothing_tau_limits() -> None:
    cells, pts, true_cell = _cells_and_points(np.random.default_rng(9), 50, 20)
    sharp = geo.haversine_smoothed_targets(pts, cells, tau_km=1e-3)
    assert np.array_equal(sharp, np.eye(50, dtype=np.float32)[true_cell])
    flat = geo.haversine_smoothed_targets(pts, cells, tau_km=1e9)
    np.testing.assert_allclose(flat, 1 / 50, rtol=1e-4)
    default = geo.haversine_smoothed_targets(pts, cells)
    wide = geo.haversine_smoothed_targets(pts, cells, tau_km=500.0)
    assert (wide.max(axis=1) < default.max(axis=1)).all()  # larger tau spreads more mass off the true cell


def test_smoothing_chunked_equals_unchunked_and_large_c_is_stable() -> None:
    cells, pts, _ = _cells_and_points(np.random.default_rng(10), 30, 25)
    full = geo.haversine_smoothed_targets(pts, cells)
    # 65 elements over 30 cells: 2 rows per block, the last block partial. Exact: element-wise ufuncs and a
    # per-row normalisation whose summation order depends on the row length only, never on the block
    assert np.array_equal(geo.haversine_smoothed_targets(pts, cells, max_chunk_elems=65), full)
    assert np.array_equal(geo.haversine_smoothed_targets(pts, cells, max_chunk_elems=1), full)
    # many cells, all far away, tiny tau: every exponent underflows except the nearest -> no 0/0, no NaN
    many = _random_points(np.random.default_rng(11), 20000)
    t = geo.haversine_smoothed_targets(np.array([[0.0, 0.0], [89.0, 170.0]]), many, tau_km=0.01)
    assert np.isfinite(t).all() and np.allclose(t.sum(axis=1), 1.0) and (t.max(axis=1) == 1.0).all()


def test_smoothing_rejects_bad_input() -> None:
    cells = np.array([[0.0, 0.0], [10.0, 10.0]])
    with pytest.raises(ValueError, match="tau_km"):
        geo.haversine_smoothed_targets([[0.0, 0.0]], cells, tau_km=0.0)
    with pytest.raises(ValueError, match="cell_centroids_deg is empty"):
        geo.haversine_smoothed_targets([[0.0, 0.0]], np.empty((0, 2)))
    with pytest.raises(ValueError, match="true_latlon_deg latitude: nan"):
        geo.haversine_smoothed_targets([[np.nan, 0.0]], cells)
    assert geo.haversine_smoothed_targets(np.empty((0, 2)), cells).shape == (0, 2)
