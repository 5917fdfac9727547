"""train/probes.py: raw-pixel thumbnails, the linear classifier, probes, the raw-pixel geocell baseline,
warnings; their place in the report and the CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from trainkit import make_dataset

from model.formats.dataset import load_dataset
from train import probes
from train.data import LocationTable


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("probes") / "ds", n=40, size=24)


def test_thumbnails_are_8x8_rgb_per_view_in_heading_order(tiny):
    ds = load_dataset(tiny)
    table = LocationTable.from_dataset(ds)
    x = probes.pixel_features(ds, table.ids[:3], [270, 0, 90, 180])
    assert x.shape == (3, 4 * 8 * 8 * 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    one = probes.pixel_features(ds, table.ids[:3], [0])
    assert one.shape == (3, 192)
    np.testing.assert_array_equal(x[:, :192], one)  # view 0 first whatever the order asked for
    np.testing.assert_array_equal(x[:, 192:384], probes.pixel_features(ds, table.ids[:3], [90]))
    # a flat image keeps its colour
    from PIL import Image

    Image.new("RGB", (24, 24), (255, 0, 51)).save(tiny.parent / "flat.jpg", quality=95)
    th = probes.thumbnail(tiny.parent / "flat.jpg")
    assert th.shape == (8, 8, 3) and np.allclose(th.reshape(-1, 3).mean(0), [1.0, 0.0, 0.2], atol=0.03)


def test_thumbnails_read_in_worker_processes_equal_the_ones_read_here(tiny, monkeypatch):
    """Large datasets are read in chunks by two processes (PIL holds the GIL): same rows, same order."""
    ds = load_dataset(tiny)
    ids = LocationTable.from_dataset(ds).ids
    here = probes.pixel_features(ds, ids, [0, 90, 180, 270], workers=1)
    monkeypatch.setattr(probes, "THUMB_CHUNK", 7)  # 40 locations -> 6 chunks, the last one short
    monkeypatch.setattr(probes.os, "cpu_count", lambda: 2)
    pools, real = [], probes.pool_context
    monkeypatch.setattr(probes, "pool_context", lambda *a: pools.append(a) or real(*a))
    seen = []
    pooled = probes.pixel_features(ds, ids, [0, 90, 180, 270], workers=2,
                                   progress=lambda name, done, total: seen.append((done, total)))
    np.testing.assert_array_equal(pooled, here)
    assert seen[-1] == (40, 40) and len(seen) == 6 and pools == [(["train.probes"],)]


def test_thumbnail_cache_is_keyed_and_reused(tiny, tmp_path, monkeypatch):
    ds = load_dataset(tiny)
    ids = [loc.id for loc in ds.locations][:5]
    first = probes.cached_pixel_features(ds, ids, [0, 90], tmp_path, "fp1")
    calls = []
    real = probes.pixel_features
    monkeypatch.setattr(probes, "pixel_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    np.testing.assert_array_equal(probes.cached_pixel_features(ds, ids, [90, 0], tmp_path, "fp1"), first)
    assert calls == []
    probes.cached_pixel_features(ds, ids, [0, 90], tmp_path, "fp2")  # other dataset content: recomputed
    probes.cached_pixel_features(ds, ids[:4], [0, 90], tmp_path, "fp1")  # other rows: recomputed
    assert len(calls) == 2 and len(list(tmp_path.glob("thumbs-*.npy"))) == 3


def test_linear_probe_decodes_a_separable_label_and_reports_the_majority_rate():
    rng = np.random.default_rng(0)
    n = 400
    y = np.where(rng.random(n) < 0.7, "right", "left").astype(object)
    x = rng.normal(size=(n, 20)) + 8.0 * (y == "left")[:, None] * np.eye(20)[3]
    res = probes.linear_probe(x[:300], y[:300], x[300:], y[300:])
    assert res["accuracy"] > 0.97 and res["n_classes"] == 2 and (res["n_train"], res["n_eval"]) == (300, 100)
    assert res["majority"] == pytest.approx(np.mean(y[300:] == "right"))
    noise = probes.linear_probe(rng.normal(size=(300, 20)), y[:300], rng.normal(size=(100, 20)), y[300:])
    assert 0 <= noise["accuracy"] <= 1 and abs(noise["accuracy"] - noise["majority"]) < 0.15
    # unknown labels are left out; one known class is no probe; eval classes unseen in train count as wrong
    y2 = y.copy()
    y2[:50] = ""
    assert probes.linear_probe(x[:300], y2[:300], x[300:], y2[300:])["n_train"] == 250
    assert probes.linear_probe(x[:10], np.array(["a"] * 10, dtype=object), x[10:20], y[10:20]) is None
    unseen = probes.linear_probe(x[:300], y[:300], x[300:], np.array(["up"] * 100, dtype=object))
    assert unseen["accuracy"] == 0.0 and unseen["majority"] == 0.0


def test_fit_linear_is_deterministic_whatever_the_thread_count():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 30))
    t = rng.random((200, 7))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = probes.fit_linear(x, t, max_iter=30)
        torch.set_num_threads(2)
        b = probes.fit_linear(x, t, max_iter=30)
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # fits side by side (as pigeon eval runs them) each stay on one thread, and the caller's count comes back
    from concurrent.futures import ThreadPoolExecutor

    try:
        torch.set_num_threads(2)
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda _: probes.fit_linear(x, t, max_iter=30), range(4)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    for w, bias in both:
        np.testing.assert_array_equal(w, a[0])
        np.testing.assert_array_equal(bias, a[1])


def test_fit_linear_in_nn_linear_layout_fits_what_x_at_w_fits():
    """fit_linear keeps W as (C, D), nn.Linear's layout (its weight gradient g^T x is fast in MKL for tall,
    skinny x, where the (D, C) layout's x^T g is not): it lands on the same classifier as the same L-BFGS run
    on x @ W with W as (D, C), and returns W as (D, C)."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 300)
    feats = rng.normal(size=(300, 12)) + np.eye(4)[y] @ rng.normal(size=(4, 12))
    w, b = probes.fit_linear(feats, y, 4, max_iter=50)
    assert w.shape == (12, 4) and w.flags["C_CONTIGUOUS"] and b.shape == (4,)
    xt, tt = torch.as_tensor(feats, dtype=torch.float32), torch.as_tensor(y)
    rw = torch.zeros(12, 4, requires_grad=True)
    rb = torch.zeros(4, requires_grad=True)
    opt = torch.optim.LBFGS([rw, rb], lr=1.0, max_iter=50, history_size=20, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ rw + rb, tt) + probes.L2 * (rw * rw).sum()
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(w, rw.detach().numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(b, rb.detach().numpy(), rtol=1e-3, atol=1e-3)
    ref = (feats @ rw.detach().numpy().astype(np.float64) + rb.detach().numpy()).argmax(1)
    assert (probes.linear_logits(feats, (w, b)).argmax(1) == ref).all()


def test_pixel_probe_reads_driving_side_off_the_tint(tiny):
    """trainkit tints every image by city, and the cities drive on known sides: 8x8 pixels decode it."""
    ds = load_dataset(tiny)
    table = LocationTable.from_dataset(ds)
    x = probes.pixel_features(ds, table.ids, ds.views)
    train, test = table.indices("train"), table.indices("test")
    labels = probes.probe_labels(ds, table.column)
    res = probes.run_probes(x[train], x[test], labels, train, test)
    assert res["driving_side"]["accuracy"] == 1.0 and res["driving_side"]["majority"] == 0.5
    assert res["country"]["accuracy"] == 1.0 and res["country"]["n_classes"] == 4
    assert "koppen_main" not in res  # Cfa / Cfb: one main class, no probe
    assert set(labels["koppen_main"]) == {"C"}


def test_raw_pixel_geocell_baseline_finds_the_tinted_cities(tiny):
    ds = load_dataset(tiny)
    table = LocationTable.from_dataset(ds)
    x = probes.pixel_features(ds, table.ids, ds.views)
    train, test = table.indices("train"), table.indices("test")
    cent = np.array([[48.85, 2.35], [35.68, 139.69], [-23.55, -46.63], [-33.87, 151.21]])
    ll = table.latlon_deg
    for smoothing in (True, False):
        cells = np.argmin(np.abs(ll[train, :1] - cent[:, 0]), axis=1)
        logits = probes.raw_pixel_logits(x[train], ll[train], cells, x[test], cent, 75.0, smoothing)
        assert logits.shape == (len(test), 4)
        assert np.array_equal(logits.argmax(1), np.argmin(np.abs(ll[test, :1] - cent[:, 0]), axis=1))


def test_sign_script_column_wins_else_the_country_decides(tiny):
    ds = load_dataset(tiny)
    given = np.array(["Cyrl", "", ""], dtype=object)
    got = probes.sign_scripts(ds, np.array(["FR", "JP", ""], dtype=object), given)
    assert got[0] == "Cyrl" and got[2] == ""
    assert got[1] in ("Jpan", "")  # '' only without the offline geodata
    # without a script column the country's first CLDR script decides (train/ must not import world/)
    assert probes.sign_scripts(ds, np.array(["RU", "JP"], dtype=object)).tolist() == ["Cyrl", "Jpan"]


def test_warnings_name_a_run_no_better_than_pixels():
    geo = lambda s: {"geoguessr_score": s}
    metrics = {**geo(1800.0), "guess_modes": {"expected_score": geo(1850.0)},
               "baselines": {"raw_pixels": {**geo(2000.0), "guess_modes": {"expected_score": geo(2090.0)}}},
               "probes": {"driving_side": {"accuracy": 0.80, "majority": 0.80, "n_classes": 2},
                          "country": {"accuracy": 0.23, "majority": 0.05, "n_classes": 98},
                          "koppen_main": {"accuracy": 0.9, "majority": 0.5, "n_classes": 5}},
               "probes_raw_pixels": {"driving_side": {"accuracy": 1.0, "majority": 0.8, "n_classes": 2},
                                     "country": {"accuracy": 0.31, "majority": 0.05, "n_classes": 98},
                                     "koppen_main": {"accuracy": 0.85, "majority": 0.5, "n_classes": 5}}}
    w = probes.warnings_for(metrics)
    assert len(w) == 3 and "LEARNED LITTLE OR NOTHING" in w[0] and "1850" in w[0] and "2090" in w[0]
    assert "driving_side" in w[1] and "majority" in w[1] and "country" in w[2]
    metrics["guess_modes"]["expected_score"] = geo(3000.0)
    assert not any("LEARNED" in s for s in probes.warnings_for(metrics))
    perfect = {"driving_side": {"accuracy": 1.0, "majority": 0.5, "n_classes": 2}}
    assert probes.warnings_for({"probes": perfect, "probes_raw_pixels": perfect}) == []
    half = {"driving_side": {"accuracy": 0.7, "majority": 0.5, "n_classes": 2}}
    same = probes.warnings_for({"probes": half, "probes_raw_pixels": half})
    assert "no better than raw 8x8 pixels" in same[0]
    assert probes.warnings_for({"n": 3}) == []


def test_sanity_checks_are_skipped_with_a_note_without_train_locations():
    from train.evaluate import sanity_metrics

    res, guess = sanity_metrics(None, None, None, np.arange(5), np.arange(3), [0], np.zeros((8, 4)),
                                np.zeros((5, 2)), None)
    assert guess is None and "raw_pixels" not in res and "probes" not in res
    assert res["notes"]["raw_pixels"].startswith("skipped") and "3 train locations" in res["notes"]["probes"]


def test_report_and_cli_tables_show_pixels_next_to_the_model(capsys):
    from pigeon.cli.eval import show_sanity
    from train.report import metrics_table_html, probes_html, warnings_html

    acc = {"1": 0.0, "25": 0.5, "200": 0.5, "750": 1.0, "2500": 1.0}
    m = {"n": 2, "accuracy_km": acc, "median_km": 10.0, "mean_km": 20.0, "geoguessr_score": 4000.0,
         "country_accuracy": None, "guess_modes": {}, "warnings": ["LEARNED LITTLE OR NOTHING: <x>"],
         "probes": {"country": {"accuracy": 0.5, "majority": 0.25, "n_classes": 3, "n_eval": 2}},
         "probes_raw_pixels": {"country": {"accuracy": 0.75, "majority": 0.25, "n_classes": 3, "n_eval": 2}},
         "notes": {"probes": "no probe of koppen_main"}}
    px = {k: m[k] for k in ("n", "accuracy_km", "median_km", "mean_km", "country_accuracy")}
    m["baselines"] = {"random_uniform_sphere": {**px, "geoguessr_score": 5.0},
                      "raw_pixels": {**px, "geoguessr_score": 3000.0,
                                     "guess_modes": {"expected_score": {**px, "geoguessr_score": 3100.0}}}}
    table = metrics_table_html(m)
    assert table.index("model (head guess)") < table.index("baseline: raw_pixels (head guess)") \
        < table.index("baseline: raw_pixels (expected_score guess)") < table.index("random_uniform_sphere")
    probe = probes_html(m)
    assert "<td>25.0%</td><td>50.0%</td><td>75.0%</td>" in probe and "no probe of koppen_main" in probe
    assert "&lt;x&gt;" in warnings_html(m) and warnings_html({}) == ""
    show_sanity(m)
    out = capsys.readouterr().out
    assert "raw pixels expected_score" in out and "3100.0" in out and "75.0%" in out
    assert "WARNING: LEARNED LITTLE OR NOTHING: <x>" in out
