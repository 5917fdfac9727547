"""Retrieval refinement on synthetic embeddings whose geometry mirrors the locations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.geo.geography import haversine_km
from model.formats.manifest import FormatError
from model.retrieval import RefinementIndex, RetrievalConfig


def _world(n=600, seed=0):
    """Points in 6 clusters (cells = cluster id); embedding = noisy random projection of xyz."""
    rng = np.random.default_rng(seed)
    centres = np.array([[48.8, 2.3], [40.7, -74.0], [-33.9, 151.2], [35.7, 139.7], [-23.5, -46.6], [55.7, 37.6]])
    cells = rng.integers(0, len(centres), n)
    latlon = centres[cells] + rng.normal(0, 0.6, (n, 2))
    proj = rng.normal(size=(2, 32))
    emb = (latlon / 10.0) @ proj + rng.normal(0, 0.01, (n, 32))
    return emb.astype(np.float32), latlon, cells, centres, proj


def test_build_prototypes_cover_every_nonempty_cell():
    emb, latlon, cells, centres, _ = _world()
    idx = RefinementIndex.build(emb, latlon, cells, num_cells=7)  # cell 6 is empty
    assert set(idx.proto_cell.tolist()) == set(range(6))
    assert idx.member_offsets[-1] == len(idx.member_rows)
    assert len(np.unique(idx.member_rows)) == len(idx.member_rows)  # no location in two clusters
    assert (idx.cell_offsets[6] == idx.cell_offsets[7])


def test_refinement_moves_guess_toward_truth():
    emb, latlon, cells, centres, proj = _world()
    idx = RefinementIndex.build(emb, latlon, cells, num_cells=6)
    rng = np.random.default_rng(1)
    truth = centres[[0, 2, 4]] + rng.normal(0, 0.6, (3, 2))
    q = ((truth / 10.0) @ proj).astype(np.float32)
    probs = np.full((3, 6), 0.02)
    probs[[0, 1, 2], [0, 2, 4]] = 0.9
    out = idx.refine(q, probs, centres)
    d_ref = haversine_km(out["latlon"][:, 0], out["latlon"][:, 1], truth[:, 0], truth[:, 1])
    d_head = haversine_km(centres[[0, 2, 4], 0], centres[[0, 2, 4], 1], truth[:, 0], truth[:, 1])
    assert np.all(d_ref < d_head), (d_ref, d_head)
    assert out["cell"].tolist() == [0, 2, 4]
    assert out["candidates"].shape == (3, 5)


def test_safety_valve_falls_back_to_probability_ranking():
    emb, latlon, cells, centres, proj = _world()
    idx = RefinementIndex.build(emb, latlon, cells, num_cells=6)
    q = ((centres[[3]] / 10.0) @ proj).astype(np.float32)  # looks like Tokyo...
    probs = np.array([[0.5, 0.0, 0.0, 0.45, 0.05, 0.0]])   # ...but the head says Paris
    far = idx.refine(q, probs, centres, max_refinement_km=100_000)
    assert far["cell"][0] == 3 and not far["fell_back"][0]
    capped = idx.refine(q, probs, centres, max_refinement_km=1000)
    assert capped["cell"][0] == 0 and capped["fell_back"][0]


def test_save_load_round_trip_and_corruption(tmp_path):
    emb, latlon, cells, centres, proj = _world(200)
    idx = RefinementIndex.build(emb, latlon, cells, num_cells=6, cfg=RetrievalConfig(top_k=3))
    idx.save(tmp_path / "index")
    back = RefinementIndex.load(tmp_path / "index")
    q = emb[:4]
    probs = np.random.default_rng(0).dirichlet(np.ones(6), 4)
    a, b = idx.refine(q, probs, centres), back.refine(q, probs, centres)
    np.testing.assert_allclose(a["latlon"], b["latlon"])
    assert back.cfg.top_k == 3
    with open(tmp_path / "index" / "arrays.npz", "r+b") as f:
        f.seek(100)
        f.write(b"garbage")
    with pytest.raises(FormatError, match="sha256"):
        RefinementIndex.load(tmp_path / "index")
    with pytest.raises(FormatError, match="pigeon index"):
        RefinementIndex.load(tmp_path / "nothing")


def _older_index(new: Path, old: Path, prototypes: bytes, arrays_npz: bytes) -> Path:
    """An index folder as an older version wrote it: ``new``'s manifest (counts, config) over the given
    prototypes.faiss and arrays.npz bytes, with their hashes."""
    import model.formats.manifest as mf
    from model.retrieval import SCHEMA_VERSION

    old.mkdir()
    (old / "prototypes.faiss").write_bytes(prototypes)
    (old / "arrays.npz").write_bytes(arrays_npz)
    manifest = mf.read_manifest(new, "index", SCHEMA_VERSION)
    mf.write_manifest(old, "index", SCHEMA_VERSION, {k: v for k, v in manifest.items()
                                                     if k not in ("format", "version", "files")},
                      ("prototypes.faiss", "arrays.npz"))
    return old


def test_members_are_stored_as_int8_rows_and_older_float16_indexes_still_load(tmp_path):
    import io

    from model.retrieval import _quantize_rows

    emb, latlon, cells, centres, proj = _world(300)
    idx = RefinementIndex.build(emb, latlon, cells, num_cells=6)
    # the member embeddings are what the file stores: within half an int8 step of the float32 ones
    rows = idx.member_rows
    step = np.abs(idx.train_emb).max(1) / 127
    q, scale = _quantize_rows(idx.train_emb)
    assert q.dtype == np.int8 and np.allclose(scale, step, rtol=1e-6)
    np.testing.assert_array_equal(q, _quantize_rows(q.astype(np.float32) * scale[:, None])[0])  # idempotent
    idx.save(tmp_path / "new")
    with np.load(tmp_path / "new" / "arrays.npz") as z:
        assert z["train_emb"].dtype == np.int8 and z["train_emb_scale"].shape == (len(rows),)
    back = RefinementIndex.load(tmp_path / "new")
    np.testing.assert_array_equal(back.train_emb, idx.train_emb)
    # every member's nearest stored member is itself (int8 keeps the neighbours apart)
    d = ((back.train_emb[:, None, :] - idx.train_emb[None]) ** 2).sum(2)
    assert (d.argmin(1) == np.arange(len(d))).all()
    # an index written before int8 (float16 members, no scale) loads and answers like the int8 one
    with np.load(tmp_path / "new" / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "train_emb_scale"}
    arrays["train_emb"] = idx.train_emb.astype(np.float16)
    npz = io.BytesIO()
    np.savez(npz, **arrays)
    old = _older_index(tmp_path / "new", tmp_path / "old",
                       (tmp_path / "new" / "prototypes.faiss").read_bytes(), npz.getvalue())
    legacy = RefinementIndex.load(old)
    np.testing.assert_allclose(legacy.train_emb, idx.train_emb, rtol=2 ** -10, atol=1e-6)
    probs = np.random.default_rng(2).dirichlet(np.ones(6), 8)
    np.testing.assert_allclose(legacy.refine(emb[:8], probs, centres)["latlon"],
                               back.refine(emb[:8], probs, centres)["latlon"])


def test_prototypes_are_stored_as_8_bit_codes_and_older_float32_files_still_load(tmp_path):
    import faiss

    emb, latlon, cells, centres, _ = _world(300)
    idx = RefinementIndex.build(emb, latlon, cells, num_cells=6)
    # the built index searches the decoded 8-bit prototypes: within one code step of the cluster means (here
    # of the int8-rounded members, so plus half their step)
    means = np.stack([idx.train_emb[idx.member_rows[a:b]].mean(0)
                      for a, b in zip(idx.member_offsets[:-1], idx.member_offsets[1:])])
    step = (means.max(0) - means.min(0)) / 255 + np.abs(idx.train_emb).max() / 254
    assert idx.proto_emb.dtype == np.float32
    assert (np.abs(idx.proto_emb - means) <= step + 1e-4).all()
    assert np.abs(idx.proto_emb - means).max() > 0  # really rounded
    idx.save(tmp_path / "new")
    stored = faiss.read_index(str(tmp_path / "new" / "prototypes.faiss"))
    assert isinstance(stored, faiss.IndexScalarQuantizer) and stored.code_size == emb.shape[1]
    back = RefinementIndex.load(tmp_path / "new")
    np.testing.assert_array_equal(back.proto_emb, idx.proto_emb)  # what was searched is what comes back
    probs = np.random.default_rng(3).dirichlet(np.ones(6), 16)
    built, reloaded = idx.refine(emb[:16], probs, centres), back.refine(emb[:16], probs, centres)
    for key in ("latlon", "cell", "candidate_scores"):
        np.testing.assert_allclose(reloaded[key], built[key])
    back.save(tmp_path / "again")  # saving a loaded index writes the same codes again
    assert (tmp_path / "again" / "prototypes.faiss").read_bytes() == (
        tmp_path / "new" / "prototypes.faiss").read_bytes()
    # an index written before (float32 IndexFlatL2 prototypes) loads with those values and answers the same
    flat = faiss.IndexFlatL2(emb.shape[1])
    flat.add(idx.proto_emb)
    old = _older_index(tmp_path / "new", tmp_path / "old", faiss.serialize_index(flat).tobytes(),
                       (tmp_path / "new" / "arrays.npz").read_bytes())
    legacy = RefinementIndex.load(old)
    np.testing.assert_array_equal(legacy.proto_emb, idx.proto_emb)
    np.testing.assert_allclose(legacy.refine(emb[:16], probs, centres)["latlon"], built["latlon"])


def test_bad_shapes_are_rejected():
    emb, latlon, cells, centres, _ = _world(100)
    with pytest.raises(FormatError):
        RefinementIndex.build(emb[:50], latlon, cells, num_cells=6)
    with pytest.raises(FormatError, match="cell labels"):
        RefinementIndex.build(emb, latlon, cells + 10, num_cells=6)
    idx = RefinementIndex.build(emb, latlon, cells, num_cells=6)
    with pytest.raises(FormatError, match="dim"):
        idx.refine(np.zeros((1, 5), np.float32), np.ones((1, 6)) / 6, centres)
    with pytest.raises(FormatError, match="cell_probs"):
        idx.refine(emb[:1], np.ones((1, 4)) / 4, centres)
