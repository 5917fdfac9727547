"""The text cue (model/text): gazetteer lookup, evidence, fusion with the image distribution, the OCR engine on a
real drawn sign, and the eval's off/on comparison. Wrong reads on purpose: an ambiguous name, a misspelt name,
random text, and a real place the image finds implausible."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from model.inference import play
from model.text.cue import TextCue, TextCueConfig
from model.text.engines import NullEngine, TextRead, make_engine
from model.text.gazetteer import Gazetteer, normalize
from model.text.scripts import script_of

# a small world: 4 cells (centroids), each in one country, and a gazetteer of places in them
CENTROIDS = np.array([[56.9, 24.1], [40.4, -3.7], [9.9, -84.1], [37.3, -121.9]])
CELL_COUNTRY = ["LV", "ES", "CR", "US"]
PLACES = [  # name, lat, lon, cc, population
    ("Riga", 56.95, 24.11, "LV", 700_000), ("Barajas de Madrid", 40.47, -3.58, "ES", 46_000),
    ("San Jose", 9.93, -84.08, "CR", 330_000), ("San Jose", 37.34, -121.89, "US", 1_000_000),
    ("San José", 40.50, -3.70, "ES", 2_000), ("Svencioneliai", 55.16, 26.0, "LT", 6_000),
    ("Svencionys", 55.15, 26.17, "LT", 5_000), ("Kota", 25.18, 75.84, "IN", 1_000_000),
]


@pytest.fixture(scope="module")
def gazetteer():
    names, lat, lon, cc, pop = zip(*PLACES)
    return Gazetteer(list(names), np.array(lat), np.array(lon), list(cc), np.array(pop, float))


# explicit weights, so the tests do not move when the defaults are re-tuned on validation renders
CFG = TextCueConfig(null_weight=0.25, image_power=1.0, snap_threshold=0.6, match_power=4.0, population_alpha=0.5,
                    script_weight=3.0, word_weight=3.0)


@pytest.fixture(scope="module")
def cue(gazetteer):
    return TextCue(gazetteer, CFG)


def reads(*texts, conf=0.95):
    return [TextRead(t, conf) for t in texts]


def flat():
    return np.full(len(CENTROIDS), 1 / len(CENTROIDS))


def test_normalize_folds_case_accents_and_spacing():
    assert normalize("Barajas de Madrid") == normalize("BARAJAS-DE-MADRID") == normalize("BarajasdeMadrid")
    assert normalize("San José") == "sanjose"
    assert normalize("Viesnīca") == "viesnica"


def test_lookup_exact_fuzzy_prefix_and_short(gazetteer):
    exact = gazetteer.lookup("Riga")
    assert exact[0].kind == "exact" and exact[0].quality == 1.0
    misspelt = gazetteer.lookup("Barajas de Madird")  # two letters swapped
    assert misspelt and misspelt[0].kind == "fuzzy" and 0.85 <= misspelt[0].quality < 1.0
    truncated = gazetteer.lookup("Svencion")
    assert {m.key for m in truncated} == {"svencioneliai", "svencionys"}
    assert all(m.kind == "prefix" and m.quality < 1.0 for m in truncated)
    assert gazetteer.lookup("Rig") == []            # too short to look up
    assert gazetteer.lookup("Kotx") == []           # short reads must match exactly
    assert len(gazetteer.lookup("San Jose")[0].rows) == 3  # every place of that name


def test_no_text_or_garbage_leaves_the_distribution_unchanged(cue):
    p = np.array([0.1, 0.2, 0.3, 0.4])
    for ev in (cue.observe([]), cue.observe(reads("xqzv wkj", "|||", "12", "Hotel", "City Centre"))):
        fused = cue.fuse(p, CENTROIDS, CELL_COUNTRY, ev)
        np.testing.assert_array_equal(fused.probs, p)
        assert fused.snap is None
    base = play(p, CENTROIDS, CELL_COUNTRY, "expected_score")
    got = play(p, CENTROIDS, CELL_COUNTRY, "expected_score", text_cue=cue, evidence=cue.observe(reads("zzzz qqq")))
    assert got.guess == base.guess


def test_a_clear_read_snaps_to_the_place(cue):
    got = play(flat(), CENTROIDS, CELL_COUNTRY, "expected_score", text_cue=cue,
               evidence=cue.observe(reads("Hotel", "Riga")))
    assert got.guess == pytest.approx((56.95, 24.11))
    assert got.text["snapped"] and got.text["best"]["name"] == "Riga"
    assert got.probs[0] > 0.8 and got.probs[0] == max(got.probs)


def test_a_sign_with_a_distance_is_parsed_and_still_locates(cue):
    ev = cue.observe(reads("Riga 15 km"))
    assert ev.candidates[0].distance_km == pytest.approx(15.0)
    ev_mi = cue.observe(reads("Riga 10 mi"))
    assert ev_mi.candidates[0].distance_km == pytest.approx(16.09, abs=0.01)


def test_an_ambiguous_name_spreads_over_its_countries_and_the_image_decides(cue):
    ev = cue.observe(reads("San Jose"))
    assert {c.country for c in ev.candidates} == {"CR", "US", "ES"}
    fused = cue.fuse(flat(), CENTROIDS, CELL_COUNTRY, ev)
    assert fused.snap is None  # no single place holds the belief on a flat image distribution
    assert fused.probs[2] > 0.2 and fused.probs[3] > 0.2
    costa_rica = np.array([0.02, 0.02, 0.9, 0.06])  # the image says Costa Rica
    fused = cue.fuse(costa_rica, CENTROIDS, CELL_COUNTRY, ev)
    assert fused.snap == pytest.approx((9.93, -84.08))


def test_a_misspelt_name_still_matches_but_counts_less(cue):
    good = cue.observe(reads("Barajas de Madrid")).candidates[0].weight
    bad = cue.observe(reads("Barajas de Madird")).candidates[0]
    assert bad.name == "Barajas de Madrid" and bad.weight < good


def test_a_read_the_image_finds_implausible_does_not_snap(cue):
    sure_of_latvia = np.array([0.997, 0.001, 0.001, 0.001])
    got = play(sure_of_latvia, CENTROIDS, CELL_COUNTRY, "expected_score", text_cue=cue,
               evidence=cue.observe(reads("Barajas de Madrid")))
    assert got.text["snapped"] is False
    assert got.guess == pytest.approx(tuple(CENTROIDS[0]), abs=1.0)


def test_script_and_local_words_are_country_priors(cue):
    ev = cue.observe(reads("Гостиница"))
    assert ev.scripts == ["Cyrl"] and not ev.candidates
    words = cue.observe(reads("Viesnīca"))
    assert words.words and "LV" in next(iter(words.words.values()))
    fused = cue.fuse(flat(), CENTROIDS, CELL_COUNTRY, words)
    assert fused.probs[0] > fused.probs[1] and fused.snap is None


def test_script_of():
    assert script_of("Riga") == "Latn" and script_of("Центр") == "Cyrl" and script_of("ホテル") == "Kana"
    assert script_of("市役所") == "Hani" and script_of("호텔") == "Hang" and script_of("12 km") == "Latn"
    assert script_of("123") == ""


def test_config_rejects_bad_weights():
    with pytest.raises(ValueError, match="text_cue"):
        TextCueConfig(null_weight=-1)
    with pytest.raises(ValueError, match="text_cue"):
        TextCueConfig(snap_threshold=0)
    with pytest.raises(ValueError, match="unknown OCR engine"):
        make_engine("tesseract-9000")


def test_null_engine_reads_nothing():
    assert NullEngine().read(np.zeros((64, 64, 3), np.uint8)) == []


@pytest.mark.slow
def test_rapidocr_reads_a_drawn_town_sign():
    from world.canvas import font

    img = Image.new("RGB", (512, 512), (120, 150, 190))
    d = ImageDraw.Draw(img)
    d.rectangle([140, 220, 380, 290], fill=(20, 90, 40))
    d.text((160, 232), "Riga", font=font("Latn", 44), fill=(255, 255, 255))
    engine = make_engine("rapidocr")
    got = engine.read(np.asarray(img))
    assert any(normalize(r.text) == "riga" for r in got), got
    with pytest.raises(ValueError, match="RGB uint8"):
        engine.read(np.zeros((8, 8), np.float32))


def test_eval_reports_off_and_on_for_the_same_rounds(cue):
    from train.evaluate import countries_at, geolocation_metrics
    from train.textcue import text_cue_metrics

    true = np.array([[56.95, 24.11], [40.47, -3.58], [9.9, -84.1]])
    probs = np.tile(flat(), (3, 1))
    got, off, on = text_cue_metrics(cue, {"a": reads("Riga"), "b": reads("noise zz")}, ["a", "b", "c"], probs,
                                    true, np.array(["LV", "ES", "CR"]), CENTROIDS, CELL_COUNTRY, None,
                                    geolocation_metrics, countries_at)
    assert got["rounds"] == 3 and got["rounds_with_text"] == 2 and got["confident_matches"] == 1
    assert got["match_precision"] == 1.0 and got["read_rate"] == pytest.approx(1 / 3)
    assert got["on"]["geoguessr_score"] > got["off"]["geoguessr_score"]
    np.testing.assert_allclose(off[1:], on[1:])  # rounds without a match play the same guess


def test_the_maps_decay_moves_the_expected_score_guess():
    """On a small map (short decay) the guess commits to the likeliest cell; on the world map a point between
    two likely cells can score more in expectation."""
    from model.inference import cell_score_matrix

    # three likely cells ~1,000 km around a fourth, unlikely one in the middle
    cents = np.array([[9.0, 0.0], [-4.5, 7.8], [-4.5, -7.8], [0.0, 0.0]])
    p = np.array([0.3, 0.3, 0.3, 0.1])
    world = play(p, cents, [""] * 4, "expected_score", score_matrix=cell_score_matrix(cents))
    small = play(p, cents, [""] * 4, "expected_score", score_matrix=cell_score_matrix(cents, 50.0),
                 decay_km=50.0)
    assert world.guess == pytest.approx((0.0, 0.0))
    assert small.guess in [pytest.approx(tuple(c)) for c in cents[:3]]


def test_text_cue_imports_no_ocr_engine_or_torch():
    import subprocess
    import sys

    code = ("import sys, model.text.cue, bot.config; "
            "heavy = [m for m in ('torch', 'onnxruntime', 'rapidocr_onnxruntime', 'cv2', 'rapidfuzz') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stdout + got.stderr


def test_predictor_reads_views_side_by_side_in_view_order(cue):
    """Several OCR engines read a location's views in parallel threads; the reads come back numbered by view, as
    one engine would give them."""
    from model.inference import Predictor

    class Echo:  # an engine that "reads" the view's mean brightness, slowly, so the threads overlap
        name = "echo"

        def read(self, image):
            import time

            time.sleep(0.05)
            return [TextRead(f"v{int(image.mean())}", 0.9)]

    pred = Predictor.__new__(Predictor)
    pred.text_cue, pred._ocr_pool = cue, None
    views = [np.full((16, 16, 3), 10 * (k + 1), np.uint8) for k in range(4)]
    for engines in ([Echo()], [Echo(), Echo()], [Echo(), Echo(), Echo()]):
        pred.ocr = engines
        ev = pred.read_text(views)
        assert [(r.view, r.text) for r in ev.reads] == [(k, f"v{10 * (k + 1)}") for k in range(4)]


def test_eval_reads_report_progress_through_the_projects_callback_and_are_cached(tmp_path):
    """``pigeon eval --text-cue`` passes its ``progress(stage, done, total)`` callback to the OCR pass."""
    from trainkit import make_dataset

    from model.formats.dataset import load_dataset
    from train.textcue import read_locations

    ds = load_dataset(make_dataset(tmp_path / "ds", n=6, size=32))
    ids = [loc.id for loc in ds.locations]
    calls = []
    reads, _ = read_locations(ds, ids, ds.views, TextCueConfig(engine="none"), tmp_path / "cache", "fp",
                              lambda stage, done, total: calls.append((stage, done, total)))
    assert set(reads) == set(ids) and calls[-1] == ("text cue: reading signs", 6, 6)
    again, per_view = read_locations(ds, ids, ds.views, TextCueConfig(engine="none"), tmp_path / "cache", "fp")
    assert again == reads and per_view == 0.0  # from the cache
