"""Semantic + naive geocells end to end on real offline geodata (run `make setup` first).

One build of ~3,000 training points in Belgium, the Netherlands and Luxembourg (GeoNames places, jittered,
seeded) through the CLI, then checks of the invariants of docs/method.md §2.2-2.3 on the exported directory.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from model.geo import geodata
from model.config import load_config
from model.geocells.cells import GeocellConfig, Geocells, build_geocells_dir, build_naive_geocells, load_geocells
from pigeon.cli import main as pigeon_main

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "geocells.toml")
COUNTRIES = ("BE", "NL", "LU")
N_POINTS = 3000
REASONS = {"no_neighbour", "country_below_min", "unsplittable"}


def _points_csv(path, n=N_POINTS, seed=0):
    """Jittered GeoNames places of COUNTRIES; 10 % of rows are split 'val' and must be ignored."""
    places = geodata.load().places
    sel = places[places["cc"].isin(COUNTRIES)]
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(sel), n)
    df = pd.DataFrame({"id": [f"loc{i:05d}" for i in range(n)],
                       "lat": (sel["lat"].to_numpy()[rows] + rng.normal(0, 0.01, n)).round(6),
                       "lon": (sel["lon"].to_numpy()[rows] + rng.normal(0, 0.01, n)).round(6),
                       "split": np.where(rng.random(n) < 0.9, "train", "val")})
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("geocells")
    csv = _points_csv(root / "points.csv")
    out = root / "cells"
    assert pigeon_main(["geocells", "build", "--points", str(csv), "--out", str(out),
                        "--config", CONFIG]) == 0
    return {"csv": csv, "out": out, "cells": pd.read_csv(out / "geocells.csv", keep_default_na=False),
            "assign": pd.read_csv(out / "assignments.csv", keep_default_na=False),
            "points": pd.read_csv(csv, keep_default_na=False)}


def test_only_train_rows_are_assigned_each_to_exactly_one_cell(built):
    pts, assign, cells = built["points"], built["assign"], built["cells"]
    train = pts.index[pts["split"] == "train"].to_numpy()
    assert assign["row"].tolist() == train.tolist()  # one row per training point, in input order
    assert assign["id"].tolist() == pts.loc[train, "id"].tolist()
    assert assign["cell_id"].between(0, len(cells) - 1).all()
    counts = np.bincount(assign["cell_id"], minlength=len(cells))
    assert counts.tolist() == cells["size"].tolist()
    assert cells["cell_id"].tolist() == list(range(len(cells)))


def test_no_cell_crosses_a_country_border(built):
    cells, assign = built["cells"], built["assign"]
    # every point of a cell carries the cell's country
    assert (assign["country"].to_numpy() == cells["country"].to_numpy()[assign["cell_id"]]).all()
    assert set(cells["country"]) >= set(COUNTRIES)
    borders = geodata.load().countries.set_index("iso_a2")["geometry"]
    polys = shapely.from_wkt(cells["polygon"].to_numpy())
    for country in sorted(set(cells["country"])):
        mine = polys[cells["country"].to_numpy() == country]
        outside = shapely.area(shapely.difference(mine, borders[country].buffer(0.01)))
        assert outside.max() < 1e-6, (country, outside.max())


def test_sizes_within_min_max_except_flagged_isolated_cells(built):
    cells, cfg = built["cells"], GeocellConfig()
    regular = cells[~cells["isolated"]]
    assert regular["size"].between(cfg.min_cell_size, cfg.max_cell_size).all()
    assert (regular["isolated_reason"] == "").all()
    isolated = cells[cells["isolated"]]
    assert set(isolated["isolated_reason"]) <= REASONS
    small = isolated["isolated_reason"].isin(["no_neighbour", "country_below_min"])
    assert (isolated.loc[small, "size"] < cfg.min_cell_size).all()
    assert (isolated.loc[~small, "size"] > cfg.max_cell_size).all()
    assert len(isolated) < 0.1 * len(cells)


def test_cells_cover_each_country_with_training_points(built):
    cells = built["cells"]
    borders = geodata.load().countries.set_index("iso_a2")["geometry"]
    polys = shapely.from_wkt(cells["polygon"].to_numpy())
    for country in COUNTRIES:
        covered = shapely.union_all(polys[cells["country"].to_numpy() == country])
        share = shapely.intersection(covered, borders[country]).area / borders[country].area
        assert share > 0.97, (country, share)
    # polygons of different cells do not overlap (beyond slivers from coordinate rounding)
    assert shapely.union_all(polys).area == pytest.approx(shapely.area(polys).sum(), rel=1e-4)


def test_build_is_deterministic_and_the_seed_matters(built, tmp_path):
    again = tmp_path / "again"
    build_geocells_dir(built["csv"], again)
    for name in ("geocells.csv", "assignments.csv", "geocells.geojson"):
        assert (again / name).read_bytes() == (built["out"] / name).read_bytes(), name
    other = build_geocells_dir(built["csv"], tmp_path / "other", GeocellConfig(seed=1))
    assert other.table[["name", "size"]].values.tolist() != built["cells"][["name", "size"]].values.tolist()


def test_load_geocells_round_trip(built):
    cells = load_geocells(built["out"])
    assert isinstance(cells, Geocells) and len(cells) == len(built["cells"])
    assert cells.centroids_deg.shape == (len(cells), 2)
    np.testing.assert_allclose(cells.centroids_deg, built["cells"][["lat", "lon"]].to_numpy())
    assert shapely.is_valid(cells.polygons).all() and not shapely.is_empty(cells.polygons).any()
    assert cells.manifest["counts"]["cells"] == len(cells)
    assert cells.manifest["input"]["train_rows"] == len(built["assign"])
    # centroid = spherical mean of the cell's training points, lying near (inside the bbox of) them
    assign = built["assign"]
    for cid in (0, len(cells) // 2, len(cells) - 1):
        mine = assign[assign["cell_id"] == cid]
        lat, lon = cells.centroids_deg[cid]
        assert mine["lat"].min() <= lat <= mine["lat"].max() and mine["lon"].min() <= lon <= mine["lon"].max()


def test_assign_reproduces_training_labels(built):
    cells, assign = load_geocells(built["out"]), built["assign"]
    got = cells.assign(assign["lat"], assign["lon"])
    inside = shapely.covers(cells.polygons[assign["cell_id"]], shapely.points(assign["lon"], assign["lat"]))
    assert inside.mean() > 0.97  # points off the coast lie outside every polygon
    assert (got[inside] == assign["cell_id"].to_numpy()[inside]).all()
    assert (got == assign["cell_id"].to_numpy()).mean() > 0.99
    far = cells.assign([0.0, -60.0], [-30.0, 170.0])  # mid-Atlantic, Southern Ocean: nearest polygon
    assert far.shape == (2,) and (far >= 0).all() and (far < len(cells)).all()


def test_load_geocells_rejects_edited_or_missing_files(built, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(built["out"], broken)
    text = (broken / "geocells.csv").read_text()
    (broken / "geocells.csv").write_text(text.replace(",False,", ",True,", 1))
    with pytest.raises(ValueError, match="does not match its manifest"):
        load_geocells(broken)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_geocells(broken)
    (broken / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_geocells(broken)
    no_csv = tmp_path / "no_csv"
    shutil.copytree(built["out"], no_csv)
    (no_csv / "geocells.csv").unlink()
    with pytest.raises(FileNotFoundError, match="lacks geocells.csv"):
        load_geocells(no_csv)


def test_naive_cells_respect_max_and_tile_the_globe(built, tmp_path):
    assign = built["assign"]
    result = build_naive_geocells(assign["lat"], assign["lon"], GeocellConfig(max_cell_size=50))
    sizes = result.table["size"].to_numpy()
    assert sizes.max() <= 50 and sizes.sum() == len(assign) and not result.table["isolated"].any()
    boxes = np.asarray(result.polygons, dtype=object)
    assert shapely.area(boxes).sum() == pytest.approx(360 * 180)  # disjoint halves of the whole globe
    own = boxes[result.assignment]
    assert shapely.covers(own, shapely.points(assign["lon"], assign["lat"])).all()


def test_cli_naive_with_config_override(built, tmp_path):
    out = tmp_path / "naive"
    rc = pigeon_main(["geocells", "build", "--points", str(built["csv"]), "--out", str(out), "--naive",
                      "--config", CONFIG, "--set", "max_cell_size=40"])
    assert rc == 0
    cells = load_geocells(out)
    assert cells.manifest["method"] == "naive" and cells.manifest["config"]["max_cell_size"] == 40
    assert cells.table["size"].max() <= 40
    naive = pd.read_csv(out / "assignments.csv")
    got = cells.assign(naive["lat"], naive["lon"])
    assert (got == naive["cell_id"].to_numpy()).mean() > 0.999  # differs only for points on a cut line
    assert json.loads((out / "manifest.json").read_text())["input"]["sha256"] == \
        json.loads((built["out"] / "manifest.json").read_text())["input"]["sha256"]


def test_centroid_is_spherical_across_the_antimeridian():
    lat = np.array([-17.0, -17.2, -16.9, -17.1])
    lon = np.array([179.9, -179.9, 179.8, -179.8])
    result = build_naive_geocells(lat, lon)
    assert len(result.table) == 1
    assert abs(result.table["lon"].iloc[0]) > 179.5  # a planar mean would give ~0


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("lat,lon\n", "no data rows"),
    ("latitude,longitude\n1,2\n", "lacks column\\(s\\) lat, lon"),
    ("lat,lon\n10,20\nabc,20\n", "line 3: lat='abc'"),
    ("lat,lon\n95,20\n", "line 2: lat='95'"),
    ("lat,lon\n10,-181\n", "lon='-181'"),
    ("lat,lon,split\n10,20,val\n", "no rows with split == 'train'"),
])
def test_malformed_points_csv_gives_clear_errors(tmp_path, content, message):
    csv = tmp_path / "points.csv"
    csv.write_text(content)
    with pytest.raises(ValueError, match=message):
        build_geocells_dir(csv, tmp_path / "out", GeocellConfig(method="naive"))


def test_cli_reports_user_errors_with_exit_code_2(tmp_path, capsys):
    assert pigeon_main(["geocells", "build", "--points", str(tmp_path / "nope.csv"), "--out",
                        str(tmp_path / "o")]) == 2
    assert "points CSV not found" in capsys.readouterr().err
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text("max_cell_sise = 3\n")
    assert pigeon_main(["geocells", "build", "--points", str(tmp_path / "nope.csv"), "--out",
                        str(tmp_path / "o"), "--config", str(bad_cfg)]) == 2
    assert "unknown key(s) max_cell_sise" in capsys.readouterr().err


def test_config_file_matches_defaults_and_validates():
    assert load_config(GeocellConfig, CONFIG) == GeocellConfig()
    with pytest.raises(ValueError, match="min_cell_size <= max_cell_size"):
        GeocellConfig(min_cell_size=70, max_cell_size=60)
    with pytest.raises(ValueError, match="optics pass"):
        GeocellConfig(optics_passes=((1, 0.05),))
