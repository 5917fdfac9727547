"""Web Mercator screen geometry of the guess-map click (bot/mercator.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bot import mercator as m


def test_world_pixels_of_known_points():
    x, y = m.latlon_to_world_px(0.0, 0.0, 0)
    assert (float(x), float(y)) == pytest.approx((128.0, 128.0))
    x, y = m.latlon_to_world_px(m.MAX_LAT_DEG, -180.0, 1)
    assert (float(x), float(y)) == pytest.approx((0.0, 0.0), abs=1e-6)
    x, y = m.latlon_to_world_px(-m.MAX_LAT_DEG, 180.0, 2)
    assert (float(x), float(y)) == pytest.approx((1024.0, 1024.0), abs=1e-6)
    # latitudes beyond the square world are clamped, not NaN
    assert float(m.latlon_to_world_px(89.9, 0, 3)[1]) == pytest.approx(0.0, abs=1e-6)


def test_container_round_trip_many_views():
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-80, 80, 500), rng.uniform(-180, 180, 500)
    for centre, zoom in [((20, 0), 1), ((48.8, 2.3), 8), ((-33.9, 151.2), 12.5), ((0, 179.9), 4)]:
        view = m.MapView(*centre, zoom, 460, 320)
        x, y = m.latlon_to_container_px(lat, lon, view)
        lat2, lon2 = m.container_px_to_latlon(x, y, view)
        assert np.allclose(lat2, lat, atol=1e-9)
        assert np.allclose((lon2 - lon + 180) % 360 - 180, 0, atol=1e-9)


def test_centre_maps_to_container_centre_and_antimeridian_takes_short_way():
    view = m.MapView(0.0, 179.0, 6, 400, 300)
    x, y = m.latlon_to_container_px(0.0, 179.0, view)
    assert (float(x), float(y)) == pytest.approx((200.0, 150.0))
    # 2 degrees east across the antimeridian is a little to the right, not a whole world to the left
    x, _ = m.latlon_to_container_px(0.0, -179.0, view)
    assert float(x) == pytest.approx(200 + 2 / 360 * m.world_size_px(6))
    assert m.inside(float(x), 150.0, view)


def test_calibration_from_two_points_matches_the_projection():
    view = m.MapView(20.0, 0.0, 1, 460, 320)

    def px(lat, lon):
        x, y = m.latlon_to_container_px(lat, lon, view)
        return float(x), float(y)

    kodiak, hobart = (57.79, -152.41), (-42.88, 147.33)
    cal = m.Calibration.from_points(kodiak, px(*kodiak), hobart, px(*hobart))
    for pt in [(48.85, 2.35), (-23.5, -46.6), (64.1, -21.9)]:
        assert cal.to_px(*pt) == pytest.approx(px(*pt), abs=1e-6)
        assert cal.to_latlon(*px(*pt)) == pytest.approx(pt, abs=1e-6)
    with pytest.raises(ValueError, match="differ"):
        m.Calibration.from_points((0, 0), (0, 0), (0, 10), (5, 5))


def test_resolution_and_zoom_choice():
    # one pixel at zoom 0 on the equator is the circumference over 256
    assert m.km_per_px(0, 0) == pytest.approx(2 * math.pi * 6378.137 / 256)
    assert m.km_per_px(60, 5) == pytest.approx(m.km_per_px(0, 5) / 2)
    z = m.zoom_for_resolution(48.85, 0.5)
    assert m.km_per_px(48.85, z) <= 0.5 < m.km_per_px(48.85, z - 1)
    assert m.zoom_for_resolution(0, 1e-9) == 18.0
    with pytest.raises(ValueError):
        m.zoom_for_resolution(0, 0)
    with pytest.raises(ValueError, match="no area"):
        m.MapView(0, 0, 1, 0, 100)
