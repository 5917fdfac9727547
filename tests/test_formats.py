"""model.formats.manifest: one manifest shape for run, geocells, dataset, index and checkpoint folders; the
legacy shapes still read; wrong format / version / size / sha256 refused with a message naming the file."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.formats import manifest as mf
from model.formats.manifest import FormatError, MissingFileError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "checkpoints" / "demo"


# ----------------------------------------------------------------------------- one folder of each kind
def _geocells(tmp_path: Path) -> Path:
    from model.geocells.cells import GeocellConfig, build_geocells_dir

    rng = np.random.default_rng(0)
    csv = tmp_path / "points.csv"
    pts = np.c_[rng.uniform(-60, 60, 20), rng.uniform(-170, 170, 20)]
    csv.write_text("lat,lon\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in pts))
    out = tmp_path / "geocells"
    build_geocells_dir(csv, out, GeocellConfig(method="naive", min_cell_size=1, max_cell_size=4))
    return out


def _dataset(tmp_path: Path) -> Path:
    from trainkit import make_dataset

    return make_dataset(tmp_path / "dataset", n=8, size=8, views=(0,))


def _index(tmp_path: Path) -> Path:
    from model.retrieval import RefinementIndex

    rng = np.random.default_rng(0)
    latlon = np.c_[rng.uniform(-50, 50, 40), rng.uniform(-150, 150, 40)]
    cells = (latlon[:, 1] > 0).astype(np.int64)
    idx = RefinementIndex.build(rng.normal(size=(40, 8)).astype(np.float32), latlon, cells, num_cells=2)
    return idx.save(tmp_path / "index", extra={"model_sha256": "0" * 64})


def _run(tmp_path: Path) -> Path:
    import torch

    from model.formats import rundir

    fields = {"backbone": {"name": "tiny-vit"}, "embed_dim": 4, "image_size": 32, "mean": [0.5] * 3,
              "std": [0.5] * 3, "num_cells": 2, "aux": {}}
    rundir.write_run(tmp_path / "run", {"head.w": torch.zeros(2, 4)}, 'name = "t"\n', _geocells(tmp_path), fields)
    return tmp_path / "run"


def _checkpoint(tmp_path: Path) -> Path:
    import torch

    from train.state import save_checkpoint

    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3)
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ckpt", {"lin": lin}, opt, 'x = 1\n', {"config": "abc"}, {"epoch": 1})
    return tmp_path / "ckpt"


MAKERS = {"run": _run, "geocells": _geocells, "dataset": _dataset, "index": _index, "checkpoint": _checkpoint}


def _load(kind: str, folder: Path):
    """Read the folder through the loader its consumers use (each goes through the one reader)."""
    if kind == "run":
        from model.formats import rundir

        m = rundir.read_manifest(folder)
        rundir.verify_files(folder, m)
        return m
    if kind == "geocells":
        from model.geocells.cells import load_geocells

        return load_geocells(folder).manifest
    if kind == "dataset":
        from model.formats.dataset import load_dataset

        return load_dataset(folder).manifest
    if kind == "index":
        from model.retrieval import RefinementIndex

        RefinementIndex.load(folder)
        return mf.read_manifest(folder, "index", 1)
    from train.state import load_checkpoint

    assert load_checkpoint(folder, {"config": "abc"})["progress"] == {"epoch": 1}
    return mf.read_manifest(folder, "checkpoint", 1)


def _raw(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _put(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {kind: make(tmp_path_factory.mktemp(kind)) for kind, make in MAKERS.items()}


# ----------------------------------------------------------------------------- the one shape
@pytest.mark.parametrize("kind", list(MAKERS))
def test_every_kind_writes_the_one_shape(folders, kind):
    folder = folders[kind]
    raw = _raw(folder)
    assert raw["format"] == f"pigeon-{kind}" and raw["version"] == 1 and "schema_version" not in raw
    assert list(raw)[:2] == ["format", "version"] and list(raw)[-1] == "files" and raw["files"]
    for name, entry in raw["files"].items():
        assert entry == mf.file_entry(folder / name), name  # {sha256, bytes} of the file as written
    assert _load(kind, folder) == raw  # the reader returns the current shape unchanged
    mf.verify_files(folder, raw)


def test_kind_specific_fields_and_files(folders):
    assert set(_raw(folders["run"])["files"]) >= {"model.safetensors", "config.toml", "geocells/geocells.csv",
                                                   "geocells/manifest.json"}
    assert set(_raw(folders["geocells"])["files"]) == {"geocells.csv", "geocells.geojson", "assignments.csv"}
    assert set(_raw(folders["dataset"])["files"]) == {"locations.csv"}
    assert _raw(folders["dataset"])["counts"]["locations"] == 8
    assert set(_raw(folders["index"])["files"]) == {"prototypes.faiss", "arrays.npz"}
    assert _raw(folders["index"])["model_sha256"] == "0" * 64
    assert set(_raw(folders["checkpoint"])["files"]) == {"model.safetensors", "optimizer.safetensors"}
    assert _raw(folders["checkpoint"])["identity"] == {"config": "abc"}


def test_the_module_is_standard_library_only():
    code = "import sys, model.formats.manifest; print(sorted({'numpy', 'torch', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- legacy shapes
def _legacy(raw: dict, *, schema_version: bool, bare_sha: bool, drop_format: bool) -> dict:
    out = {k: v for k, v in raw.items() if k not in ("version", "format")}
    if not drop_format:
        out = {"format": raw["format"], **out}
    out["schema_version" if schema_version else "version"] = raw["version"]
    if bare_sha:
        out["files"] = {name: e["sha256"] for name, e in raw["files"].items()}
    return out


# what each kind wrote before the shared format (see the module doc of model.formats.manifest)
LEGACY = {"run": dict(schema_version=True, bare_sha=False, drop_format=False),
          "geocells": dict(schema_version=False, bare_sha=False, drop_format=False),
          "dataset": dict(schema_version=False, bare_sha=True, drop_format=False),
          "index": dict(schema_version=True, bare_sha=True, drop_format=True),
          "checkpoint": dict(schema_version=True, bare_sha=True, drop_format=True)}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_legacy_shapes_still_load_without_rewriting(folders, tmp_path, kind):
    import shutil

    folder = tmp_path / kind
    shutil.copytree(folders[kind], folder)
    raw = _raw(folder)
    _put(folder, _legacy(raw, **LEGACY[kind]))
    before = (folder / "manifest.json").read_bytes()
    got = _load(kind, folder)
    assert (folder / "manifest.json").read_bytes() == before  # read, never rewritten
    assert got["format"] == f"pigeon-{kind}" and got["version"] == 1 and "schema_version" not in got
    if LEGACY[kind]["bare_sha"]:
        assert got["files"] == {name: {"sha256": e["sha256"]} for name, e in raw["files"].items()}
    else:
        assert got["files"] == raw["files"]
    mf.verify_files(folder, got)


def test_bare_sha_entries_are_checked_by_sha256(folders, tmp_path):
    import shutil

    folder = tmp_path / "ds"
    shutil.copytree(folders["dataset"], folder)
    _put(folder, _legacy(_raw(folder), **LEGACY["dataset"]))
    with open(folder / "locations.csv", "a") as f:
        f.write("\n")  # a size change with no recorded size is caught by the sha256
    with pytest.raises(FormatError, match="locations.csv: sha256 does not match its manifest"):
        mf.verify_files(folder, mf.read_manifest(folder, "dataset", 1))


@pytest.mark.parametrize("kind", ["run", "geocells", "dataset"])
def test_a_missing_format_is_only_legacy_for_index_and_checkpoint(folders, tmp_path, kind):
    folder = tmp_path / kind
    folder.mkdir()
    _put(folder, {k: v for k, v in _raw(folders[kind]).items() if k != "format"})
    with pytest.raises(FormatError, match=f"manifest.json: 'format' is None, expected 'pigeon-{kind}'"):
        mf.read_manifest(folder, kind, 1)


# ----------------------------------------------------------------------------- refusals
@pytest.fixture
def dataset(folders, tmp_path):
    import shutil

    shutil.copytree(folders["dataset"], tmp_path / "ds")
    return tmp_path / "ds"


def test_wrong_format_is_refused_naming_the_file(folders, dataset):
    from model.formats.dataset import load_dataset

    _put(dataset, {**_raw(dataset), "format": "pigeon-run"})
    with pytest.raises(FormatError, match=r"ds/manifest.json: 'format' is 'pigeon-run', expected 'pigeon-dataset'"):
        load_dataset(dataset)
    with pytest.raises(FormatError, match="expected 'pigeon-index'"):  # a run is not an index
        mf.read_manifest(folders["run"], "index", 1)


@pytest.mark.parametrize("key", ["version", "schema_version"])
def test_wrong_version_is_refused(dataset, key):
    raw = {k: v for k, v in _raw(dataset).items() if k != "version"}
    _put(dataset, {**raw, key: 2})
    with pytest.raises(FormatError, match=r"manifest.json: pigeon-dataset version 2 is not supported "
                                          r"\(this pigeon reads version 1\)"):
        mf.read_manifest(dataset, "dataset", 1)


def test_wrong_size_and_sha256_are_refused(dataset):
    from model.formats.dataset import load_dataset

    path = dataset / "locations.csv"
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    with pytest.raises(FormatError, match=r"locations.csv does not match its manifest .*truncated file"):
        load_dataset(dataset)
    path.write_bytes(data + b"\n")
    with pytest.raises(FormatError, match=r"locations.csv does not match its manifest .*modified file"):
        load_dataset(dataset)
    path.write_bytes(data.replace(b"train", b"test ", 1))  # same size, other bytes
    with pytest.raises(FormatError, match=r"locations.csv: sha256 does not match its manifest"):
        load_dataset(dataset)


def test_missing_folder_manifest_and_files(dataset, tmp_path):
    with pytest.raises(MissingFileError, match="dataset folder .*nowhere does not exist"):
        mf.read_manifest(tmp_path / "nowhere", "dataset", 1)
    manifest = mf.read_manifest(dataset, "dataset", 1)
    (dataset / "locations.csv").unlink()
    with pytest.raises(FileNotFoundError, match="is missing locations.csv"):
        mf.verify_files(dataset, manifest)
    (dataset / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"manifest.json is missing"):
        mf.read_manifest(dataset, "dataset", 1)
    assert issubclass(MissingFileError, FormatError) and issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(FormatError, ValueError)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"format": "pigeon-dataset", "version": 1, "files": []}', "'files' must be an object"),
    ('{"format": "pigeon-dataset", "version": 1, "files": {"../x": "ab"}}', "'../x' is not a relative path"),
    ('{"format": "pigeon-dataset", "version": 1, "files": {"/etc/x": "ab"}}', "not a relative path"),
    ('{"format": "pigeon-dataset", "version": 1, "files": {"x": {"bytes": 3}}}', r"files\['x'\] must be"),
    ('{"format": "pigeon-dataset", "version": "1"}', "version '1' is not supported"),
])
def test_malformed_manifests_are_refused(tmp_path, text, message):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(FormatError, match=message):
        mf.read_manifest(tmp_path, "dataset", 1)


def test_required_keys_and_unlisted_files(folders, tmp_path):
    from model.formats import rundir

    run = tmp_path / "run"
    run.mkdir()
    _put(run, {k: v for k, v in _raw(folders["run"]).items() if k != "num_cells"})
    with pytest.raises(FormatError, match="manifest.json: missing key.s. num_cells"):
        rundir.read_manifest(run)
    with pytest.raises(FormatError, match="'files' does not list nothing.csv"):
        mf.verify_files(folders["dataset"], _raw(folders["dataset"]), ["nothing.csv"])


def test_writer_is_atomic_and_owns_the_format_keys(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    out = mf.write_manifest(tmp_path, "dataset", 1, {"format": "x", "schema_version": 9, "name": "n"}, ["a.txt"])
    assert out == {"format": "pigeon-dataset", "version": 1, "name": "n",
                   "files": {"a.txt": {"sha256": mf.sha256_file(tmp_path / "a.txt"), "bytes": 5}}}
    assert _raw(tmp_path) == out and not (tmp_path / "manifest.json.tmp").exists()
    with pytest.raises(ValueError, match="unknown folder kind"):
        mf.format_name("model")


# ----------------------------------------------------------------------------- the shipped demo
def test_the_shipped_demo_checkpoint_still_verifies():
    if not (DEMO / "manifest.json").is_file():
        pytest.skip("checkpoints/demo is missing")
    before = {p: p.read_bytes() for p in DEMO.rglob("manifest.json")}
    run = mf.read_manifest(DEMO, "run", 1)  # (legacy shapes are covered by the synthetic folders above)
    mf.verify_files(DEMO, run)
    index = mf.read_manifest(DEMO / "index", "index", 1)
    assert index["format"] == "pigeon-index" and all("sha256" in e for e in index["files"].values())
    mf.verify_files(DEMO / "index", index)
    mf.verify_files(DEMO / "geocells", mf.read_manifest(DEMO / "geocells", "geocells", 1))
    holdout = mf.read_manifest(DEMO / "holdout", "dataset", 1)
    mf.verify_files(DEMO / "holdout", holdout)
    assert {p: p.read_bytes() for p in DEMO.rglob("manifest.json")} == before  # nothing rewritten
