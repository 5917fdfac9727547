"""The evaluation report (train/report.py + train/templates/): pure tables, and the rendered page on a synthetic
evaluation (real PNG plots, real thumbnails from image files on disk, the Jinja2 template)."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from PIL import Image

from train import report
from train.evaluate import Predictions

CELLS = np.array([[45.0, 9.0], [48.0, 2.0], [40.0, -4.0], [-34.0, -58.0]])  # IT, FR, ES, AR centroids
CELL_COUNTRY = np.array(["IT", "FR", "ES", "AR"], dtype=object)


def _country_of(latlon):
    """Nearest-centroid country: stands in for the offline borders so the test needs no geodata."""
    d = ((latlon[:, None, :] - CELLS[None]) ** 2).sum(-1)
    return CELL_COUNTRY[d.argmin(1)]


def _preds(n=24, seed=0):
    rng = np.random.default_rng(seed)
    true_cells = rng.integers(0, 4, n)
    true = CELLS[true_cells] + rng.normal(0, 0.5, (n, 2))
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), true_cells] += 2.0 * (np.arange(n) % 3 != 0)  # right cell for 2 of 3 locations
    head = CELLS[logits.argmax(1)]
    es = head + 0.1
    p = Predictions([f"loc{i:02d}" for i in range(n)], true, head, logits, true_cells, CELL_COUNTRY[true_cells],
                    _country_of(head))
    p.guesses = {"head": head, "expected_score": es}
    p.expected_score = np.full(n, 2500.0)
    p.cell_country = CELL_COUNTRY
    p.baselines = {"random_uniform_sphere": rng.uniform(-60, 60, (n, 2))}
    return p


def _metrics(p, train_split=False):
    from train.evaluate import geolocation_metrics

    m = geolocation_metrics(p.pred_latlon, p.true_latlon, p.pred_country, p.true_country, p.logits, p.true_cells)
    m["guess_modes"] = {"expected_score": geolocation_metrics(p.guesses["expected_score"], p.true_latlon)}
    m["baselines"] = {"random_uniform_sphere": geolocation_metrics(p.baselines["random_uniform_sphere"],
                                                                   p.true_latlon)}
    if not train_split:
        m["notes"] = {"raw_pixels": "skipped: the dataset has 0 train locations"}
    m["aux"] = {"mae_elevation": 123.4, "koppen_accuracy": 0.5}
    m.update(split="test", run="runs/x<y>", dataset=None, views=[0, 90, 180, 270])
    return m


def test_country_rows_hit_rate_score_and_most_common_wrong_guess():
    rows = report.country_rows(["IT", "IT", "IT", "FR", ""], ["IT", "FR", "FR", "", "IT"],
                               np.array([5000.0, 1000.0, 2000.0, 0.0, 9.0]), np.array([1.0, 300.0, 200.0, 9e3, 1.0]))
    assert [r["country"] for r in rows] == ["IT", "FR"]  # most rounds first, unknown truth left out
    it, fr = rows
    assert it["rounds"] == 3 and it["hit_rate"] == pytest.approx(1 / 3)
    assert it["mean_score"] == pytest.approx(8000 / 3) and it["median_km"] == pytest.approx(200.0)
    assert (it["wrong_guess"], it["wrong_guess_n"]) == ("FR", 2)
    assert fr["hit_rate"] == pytest.approx(0.0) and fr["wrong_guess"] == ""  # at sea
    no_geo = report.country_rows(["IT"], None, np.array([1.0]), np.array([1.0]))
    assert no_geo[0]["hit_rate"] is None and no_geo[0]["wrong_guess"] is None


def test_calibration_bins_and_ece():
    conf = np.array([0.05, 0.15, 0.95, 0.95, 1.0])
    hit = np.array([False, True, True, True, False])
    bins = report.calibration_bins(conf, hit, n_bins=10)
    assert [b["n"] for b in bins] == [1, 1, 3]  # 1.0 falls in the last bin
    assert bins[-1]["accuracy"] == pytest.approx(2 / 3) and bins[-1]["confidence"] == pytest.approx(2.9 / 3)
    ece = report.expected_calibration_error(bins)
    assert ece == pytest.approx((0.05 + 0.85 + 3 * abs(2 / 3 - 2.9 / 3)) / 5)
    assert report.expected_calibration_error([]) is None
    perfect = report.calibration_bins(np.array([1.0, 1.0, 0.0]), np.array([True, True, False]))
    assert report.expected_calibration_error(perfect) == pytest.approx(0.0)
    sb = report.score_calibration_bins(np.array([100.0, 4900.0, 5000.0]), np.array([0.0, 5000.0, 4000.0]))
    assert [b["n"] for b in sb] == [1, 2] and sb[1]["actual"] == pytest.approx(4500.0)


def test_country_confidence_sums_cells_of_one_country():
    probs = np.array([[0.3, 0.3, 0.4], [0.9, 0.05, 0.05]])
    name, conf = report.country_confidence(probs, np.array(["IT", "IT", "FR"], dtype=object))
    assert list(name) == ["IT", "IT"] and conf == pytest.approx([0.6, 0.95])


def test_confusion_counts_keep_other_guesses_in_their_own_column():
    true = ["IT"] * 5 + ["FR"] * 3 + ["ES"]
    guess = ["IT", "IT", "FR", "DE", ""] + ["FR", "IT", "XX"] + ["ES"]
    names, m = report.confusion_counts(true, guess, top_n=2)
    assert names == ["IT", "FR"]
    assert m.tolist() == [[2, 1, 2], [1, 1, 1]]  # ES truths dropped; DE, sea and XX go to "other"
    assert m.sum() == 8


def test_played_mode_and_its_fallback():
    p = _preds()
    es = report.played(p, "expected_score", countries=_country_of)
    assert np.allclose(es.latlon, p.guesses["expected_score"]) and es.note == ""
    assert es.score.shape == (len(p.ids),) and (es.score >= 0).all() and (es.score <= 5000).all()
    ref = report.played(p, "refined", countries=_country_of)  # no index in these predictions -> head
    assert np.allclose(ref.latlon, p.pred_latlon) and "head guess shown" in ref.note
    with pytest.raises(ValueError, match="guess mode 'best'"):
        report.played(p, "best")
    assert list(report.worst_cases(np.array([5.0, 9.0, 1.0, 9.0]), 3)) == [1, 3, 0]


def test_metric_table_flags_the_played_mode_and_names_missing_baselines():
    p = _preds()
    t = report.metric_table(_metrics(p), "expected_score")
    assert all("(" in h for h in t["heads"])  # every column has its unit
    played = [r for r in t["rows"] if r["played"]]
    assert [r["name"] for r in played] == ["model (expected_score guess)"]
    missing = {r["name"]: r["missing"] for r in t["rows"] if r["values"] is None}
    assert set(missing) == {"baseline: random_train_location", "baseline: most_frequent_cell",
                            "baseline: raw_pixels"}
    assert "train split" in missing["baseline: most_frequent_cell"]
    assert "0 train locations" in missing["baseline: raw_pixels"]


def _vendor(tmp_path):
    v = tmp_path / "web"
    v.mkdir()
    (v / "leaflet.js").write_text("window.L = {}; // LEAFLET-MARK </script><script>alert(1)</script>")
    (v / "leaflet.css").write_text(".leaflet-container{} /* CSS-MARK */")
    (v / "topojson-client.min.js").write_text("window.topojson = {}; // TOPO-MARK")
    (v / "countries-50m.json").write_text('{"type":"Topology","objects":{"countries":{}},"arcs":[]}')
    return v


def test_report_page_is_self_contained(tmp_path, monkeypatch):
    monkeypatch.setattr("train.evaluate.countries_at", _country_of)
    p = _preds()
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    for loc in p.ids:
        for v in (0, 90, 180, 270):
            Image.new("RGB", (64, 48), (10 + v // 2, 80, 120)).save(ds / "images" / f"{loc}_{v}.jpg")
    m = _metrics(p)
    m["dataset"] = str(ds)
    out = report.write_report(tmp_path / "out", m, p, top_countries=3, vendor_dir=_vendor(tmp_path),
                              gallery_size=5)
    page = out.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == m  # metrics.json unchanged
    head = (tmp_path / "out" / "predictions.csv").read_text().splitlines()[0].split(",")
    assert head[:10] == ["id", "lat", "lon", "pred_lat", "pred_lon", "error_km", "true_cell", "pred_cell",
                         "country", "pred_country"] and "played_score" in head
    # everything inline: no http(s) resources, no relative src/href
    assert not re.search(r"""(src|href)=["']?(https?:|//|[a-z]+/)""", page)
    assert "LEAFLET-MARK" in page and "TOPO-MARK" in page and "CSS-MARK" in page
    assert "</script><script>alert(1)" not in page  # a vendor file cannot close the inline script
    assert "runs/x&lt;y&gt;" in page  # autoescaped
    assert "◀ played" in page and "expected_score" in page
    assert page.count("data:image/jpeg;base64,") == 5 * 4  # the gallery: 4 views of the 5 worst
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(pngs) == 5  # histogram, CDF, calibration, confusion, static map
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in pngs)
    for text in ("Per country", "most common wrong guess", "ECE", "elevation MAE", "<td>123</td><td>m</td>",
                 "<td>50.0</td><td>%</td>", "not computed", "Worst 5 guesses"):
        assert text in page, text
    points = json.loads(re.search(r"const POINTS = (\[.*?\]);\n", page).group(1))
    assert len(points) == len(p.ids) and all(len(pt) == 8 for pt in points)


def test_report_without_map_assets_or_images_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("train.evaluate.countries_at", _country_of)
    p = _preds(n=6)
    html = report.render_report(_metrics(p, train_split=True), p, vendor_dir=tmp_path / "nowhere", gallery_size=2)
    assert "Interactive map unavailable" in html and "make setup" in html
    assert "view 90° missing" in html  # no dataset folder: placeholders instead of thumbnails
    assert "L.map(" not in html
