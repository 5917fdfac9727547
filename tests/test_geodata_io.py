"""model.geo.io (polygon files, point-in-polygon, grids) and the fetch script's offline parts."""
from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import shapely

from model.geo.io import (MissingDataError, PolygonIndex, _boundary_pieces, edge_grid, load_polygons,
                              package_file, save_polygons)

ROOT = Path(__file__).resolve().parents[1]


def _fetch_module():
    spec = importlib.util.spec_from_file_location("fetch_geodata", ROOT / "scripts" / "fetch_geodata.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _shapes() -> np.ndarray:
    holed = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(4, 4), (6, 4), (6, 6), (4, 6)]])
    multi = shapely.MultiPolygon([shapely.box(20, 0, 21, 1), shapely.box(22, 0, 23, 1)])
    return np.array([holed, multi], dtype=object)


def test_polygon_file_round_trip(tmp_path):
    save_polygons(tmp_path / "p.npz", _shapes())
    back = load_polygons(tmp_path / "p.npz")
    assert list(shapely.get_type_id(back)) == [6, 6]  # everything comes back as MultiPolygon
    assert all(shapely.equals(back, _shapes()))
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z:  # plain arrays, no pickled objects
        assert set(z.files) == {"coords", "ring_offsets", "polygon_offsets", "geometry_offsets"}


def test_polygon_index_inside_hole_and_coast():
    index = PolygonIndex(_shapes(), coast_km=5.0)
    lat = np.array([1.0, 5.0, 0.5, 0.5, -0.03, -0.2])
    lon = np.array([1.0, 5.0, 20.5, 22.5, 5.0, 5.0])
    # inside, in the hole, 2nd geometry (both parts), 3.3 km south of the edge, 22 km south
    assert list(index.lookup(lat, lon)) == [0, -1, 1, 1, 0, -1]
    assert list(PolygonIndex(_shapes()).lookup(lat, lon)) == [0, -1, 1, 1, -1, -1]


def test_boundary_pieces_cover_every_ring_exactly():
    rng = np.random.default_rng(0)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 200))
    blob = shapely.Polygon(np.c_[np.cos(angles), np.sin(angles)] * 5)
    geoms = np.array([blob, *_shapes()], dtype=object)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    _, pieces, piece_owner = _boundary_pieces(parts, owner)
    assert shapely.get_num_coordinates(pieces).max() <= 32 and shapely.get_num_coordinates(pieces).min() >= 2
    np.testing.assert_allclose(shapely.length(pieces).sum(), shapely.length(shapely.get_rings(parts)).sum())
    assert sorted(set(piece_owner)) == [0, 1, 2]


def test_edge_grid_indexing_wraps_longitude():
    grid = edge_grid(np.arange(18 * 36).reshape(18, 36))  # 10 degree cells
    rows, cols = grid.index(np.array([90.0, -90.0, 0.1, 85.0]), np.array([-180.0, 179.9, 180.0, -175.0]))
    assert list(rows) == [0, 17, 8, 0] and list(cols) == [0, 35, 0, 0]


def test_package_file_missing_names_make_setup():
    with pytest.raises(MissingDataError, match="make setup"):
        package_file("json", "no_such_file.bin")


def _tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_fetch_extracts_members_and_folders(tmp_path):
    fetch = _fetch_module()
    tgz = _tgz(tmp_path / "p.tgz", {"package/a.json": b"{}", "package/img/x.png": b"x",
                                    "package/img/y.png": b"y", "package/other.txt": b"-"})
    members = {"package/a.json": ("out/a.json", "web/a.json"), "package/img/": "web/images/"}
    fetch.extract(tgz, members, tmp_path)
    assert (tmp_path / "out/a.json").read_bytes() == (tmp_path / "web/a.json").read_bytes() == b"{}"
    assert not tgz.exists()
    assert sorted(p.name for p in (tmp_path / "web/images").iterdir()) == ["x.png", "y.png"]
    records = fetch.file_records(tmp_path, ["out/a.json", "web/images/"])
    assert sorted(records) == ["out/a.json", "web/images/x.png", "web/images/y.png"]
    with pytest.raises(SystemExit, match="lacks"):
        fetch.extract(_tgz(tmp_path / "q.tgz", {"package/b": b""}), {"package/a.json": "a"}, tmp_path)


def test_fetch_skips_only_current_steps(tmp_path):
    fetch = _fetch_module()
    (tmp_path / "geodata").mkdir()
    calls = []

    def build():
        calls.append(1)
        (tmp_path / "geodata/x.txt").write_text("v1")
        return ["geodata/x.txt"], {}

    source = {"npm": "x@1", "members": {"a": ("geodata/x.txt", "web/x.txt")}}  # tuples come back as lists
    fetcher = fetch.Fetcher(tmp_path, force=False, keep_raw=False)
    fetcher.step("x", source, build)
    fetcher = fetch.Fetcher(tmp_path, force=False, keep_raw=False)  # re-reads manifest.json
    fetcher.step("x", source, build)
    assert len(calls) == 1
    (tmp_path / "geodata/x.txt").write_text("tampered")
    fetcher.step("x", source, build)
    fetcher.step("x", {"npm": "x@2"}, build)
    assert len(calls) == 3
    manifest = json.loads((tmp_path / "geodata/manifest.json").read_text())
    assert manifest["steps"]["x"]["source"] == {"npm": "x@2"}


def test_fetch_without_npm_says_how_to_install(tmp_path, monkeypatch):
    fetch = _fetch_module()
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="npm not found"):
        fetch.npm_pack("leaflet@1.9.4", tmp_path)
