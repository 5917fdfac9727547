"""Evaluation report: metrics.json, predictions.csv and a self-contained report.html rendered from the Jinja2
template ``train/templates/report.html.j2``.

The page shows the guess the bot plays (``model.guess.DEFAULT_GUESS_MODE``, ``expected_score``) unless
``mode`` says otherwise: the metrics table (every guess mode and every baseline, with units), an error CDF, a score
histogram, a per-country table (rounds, country hit rate, mean score, most common wrong guess), a calibration plot
(confidence vs accuracy, and the model's expected score vs the score it got), the country confusion between the
most frequent true countries (counts in the cells, a colour bar, guesses outside them in a separate column), an
interactive Leaflet map of every error (Leaflet, topojson-client and the world-atlas outline are inlined from the
web assets folder, ``<data>/web``, that ``make setup`` fills), a static map, and a gallery of the worst guesses with
the location's views as thumbnails. Plots are PNG (matplotlib, Agg backend), embedded as data URIs; the page loads
nothing from the network.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.geo.geodata import load_or_none
from model.formats.display import png_base64, pyplot
from model.geo.geography import ACCURACY_THRESHOLDS_KM, GEOGUESSR_MAX_SCORE, geoguessr_score, haversine_km
from model.guess import DEFAULT_GUESS_MODE, GUESS_MODES, softmax
from train.evaluate import Predictions

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
LEAFLET_FILES = ("leaflet.js", "leaflet.css", "topojson-client.min.js", "countries-50m.json")
BASELINES_NEEDING_TRAIN = ("random_train_location", "most_frequent_cell", "raw_pixels")
AUX_UNITS = {"mae_elevation": ("elevation MAE", "m"), "mae_temp_avg": ("mean temperature MAE", "°C"),
             "mae_temp_diff": ("temperature range MAE", "°C"), "mae_prec_avg": ("mean precipitation MAE", "mm"),
             "mae_prec_diff": ("precipitation range MAE", "mm"),
             "mae_population": ("population MAE", "log10(1 + people)"),
             "koppen_accuracy": ("Köppen class top-1", "%"), "month_accuracy": ("month top-1", "%")}
PROBE_COLUMNS = ["probe", "classes", "majority", "embedding", "raw 8x8 pixels", "eval n"]
MAP_ERROR_COLOURS = ((25, "#1a9850"), (200, "#91cf60"), (750, "#fee08b"), (2500, "#fc8d59"), (None, "#d73027"))


# ---- pure tables ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Played:
    """The played guess mode's per-location results: N locations."""

    mode: str
    latlon: np.ndarray          # (N, 2) degrees
    dist_km: np.ndarray         # (N,) great-circle error, km
    score: np.ndarray           # (N,) GeoGuessr points, 0..5000
    country: np.ndarray | None  # (N,) ISO alpha-2 of the guessed point, '' at sea; None without geodata
    note: str = ""              # e.g. 'refined' asked for but the run has no index


def played(preds: Predictions, mode: str = DEFAULT_GUESS_MODE, countries=None) -> Played:
    """The guesses of ``mode`` (``preds.guesses``; ``head`` is the argmax centroid, ``refined`` falls back to it
    without an index, as the Predictor does) with their errors, scores and countries. ``countries``: point
    (N, 2) -> ISO codes (N,) or None (default: the offline borders)."""
    if mode not in GUESS_MODES:
        raise ValueError(f"guess mode {mode!r}: use one of {', '.join(GUESS_MODES)}")
    note = ""
    latlon = preds.pred_latlon if mode == "head" else preds.guesses.get(mode)
    if latlon is None:
        note = f"the {mode} guess is not in these predictions (a run without a retrieval index): head guess shown"
        latlon = preds.pred_latlon
    d = haversine_km(latlon[:, 0], latlon[:, 1], preds.true_latlon[:, 0], preds.true_latlon[:, 1])
    if countries is None:
        from train.evaluate import countries_at as countries
    country = None
    if preds.true_country is not None:
        country = preds.pred_country if latlon is preds.pred_latlon else countries(latlon)
    return Played(mode, latlon, d, np.asarray(geoguessr_score(d), dtype=float), country, note)


def country_rows(true_country, guess_country, score: np.ndarray, dist_km: np.ndarray) -> list[dict[str, Any]]:
    """Per true country, most rounds first: rounds, country hit rate (0..1), mean score (points), median error
    (km) and the most common wrong guessed country with its count ('' = at sea)."""
    true = np.asarray(true_country, dtype=object)
    guess = None if guess_country is None else np.asarray(guess_country, dtype=object)
    rows = []
    for c in sorted(set(true) - {""}, key=lambda c: (-int(np.sum(true == c)), c)):
        m = true == c
        row = {"country": c, "rounds": int(m.sum()), "hit_rate": None, "mean_score": float(score[m].mean()),
               "median_km": float(np.median(dist_km[m])), "wrong_guess": None, "wrong_guess_n": 0}
        if guess is not None:
            row["hit_rate"] = float(np.mean(guess[m] == c))
            wrong = Counter(g for g in guess[m] if g != c)
            if wrong:
                row["wrong_guess"], row["wrong_guess_n"] = wrong.most_common(1)[0]
        rows.append(row)
    return rows


def calibration_bins(confidence: np.ndarray, hit: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Reliability table: confidences (N,) in [0, 1] and hits (N,) bool -> per non-empty equal-width bin
    {lo, hi, n, confidence (mean), accuracy (hit rate)}."""
    conf = np.clip(np.asarray(confidence, dtype=float), 0, 1)
    hit = np.asarray(hit, dtype=bool)
    which = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        m = which == b
        if m.any():
            out.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": int(m.sum()),
                        "confidence": float(conf[m].mean()), "accuracy": float(hit[m].mean())})
    return out


def expected_calibration_error(bins: list[dict[str, float]]) -> float | None:
    """ECE = sum over bins of n_b / N * |accuracy_b - confidence_b| (0 = perfectly calibrated)."""
    n = sum(b["n"] for b in bins)
    return None if n == 0 else float(sum(b["n"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins))


def country_confidence(probs: np.ndarray, cell_country) -> tuple[np.ndarray, np.ndarray]:
    """Cell probabilities (N, C) and the cells' countries (C,) -> (most probable country (N,), its summed
    probability (N,)); cells without a country ('') are left out of the argmax."""
    cc = np.asarray(cell_country, dtype=object)
    names = sorted(set(cc) - {""})
    if not names:
        return np.full(len(probs), "", dtype=object), np.zeros(len(probs))
    onehot = np.stack([cc == n for n in names], axis=1).astype(float)  # (C, K)
    per = probs @ onehot  # (N, K)
    best = per.argmax(1)
    return np.asarray(names, dtype=object)[best], per[np.arange(len(probs)), best]


def confusion_counts(true_country, guess_country, top_n: int) -> tuple[list[str], np.ndarray]:
    """Counts (K, K + 1) over the K <= top_n most frequent true countries: row = true, column = guessed country
    among them, last column = any other guess (elsewhere or at sea)."""
    true = np.asarray(true_country, dtype=object)
    guess = np.asarray(guess_country, dtype=object)
    names, counts = np.unique(true[true != ""], return_counts=True)
    top = [str(n) for n in names[np.lexsort((names, -counts))][:top_n]]
    pos = {c: i for i, c in enumerate(top)}
    m = np.zeros((len(top), len(top) + 1), dtype=int)
    for t, g in zip(true, guess):
        if t in pos:
            m[pos[t], pos.get(g, len(top))] += 1
    return top, m


def worst_cases(dist_km: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest errors, worst first (ties by index)."""
    return np.lexsort((np.arange(len(dist_km)), -np.asarray(dist_km)))[:k]


def error_colour(km: float) -> str:
    """Map colour of an error in km (green < 25 km ... red >= 2500 km)."""
    for limit, colour in MAP_ERROR_COLOURS:
        if limit is None or km < limit:
            return colour
    return MAP_ERROR_COLOURS[-1][1]


# ---- plots ----------------------------------------------------------------------------------------------------
PNG_DPI = 110


def plot_error_cdf(dist_km: dict[str, np.ndarray] | np.ndarray, baselines: dict[str, np.ndarray]) -> str:
    """Fraction of locations within x km (log axis) per guess mode (``dist_km``: name -> (N,) km; the first is
    drawn thick) and per baseline (thin, dashed)."""
    plt = pyplot()
    if not isinstance(dist_km, dict):
        dist_km = {"model": dist_km}
    fig, ax = plt.subplots(figsize=(7, 4))
    first = next(iter(dist_km))
    for name, d in [*dist_km.items(), *baselines.items()]:
        d = np.sort(np.maximum(d, 0.1))
        ax.step(d, np.arange(1, len(d) + 1) / len(d), where="post", label=name,
                lw=2.2 if name == first else 1, ls="-" if name in dist_km else "--")
    for t in ACCURACY_THRESHOLDS_KM:
        ax.axvline(t, color="grey", lw=0.5, ls=":")
    ax.set(xscale="log", xlabel="great-circle error (km, log scale)", ylabel="fraction of locations within",
           xlim=(0.1, 20100), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return png_base64(fig, PNG_DPI)


def plot_score_histogram(scores: dict[str, np.ndarray], bin_points: int = 250) -> str:
    """Histogram of GeoGuessr scores (points, 0..5000) per series, as a fraction of locations per bin."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bins = np.arange(0, GEOGUESSR_MAX_SCORE + bin_points, bin_points)
    for i, (name, s) in enumerate(scores.items()):
        w = np.full(len(s), 1 / max(len(s), 1))
        ax.hist(s, bins=bins, weights=w, label=f"{name} (mean {np.mean(s):,.0f})",
                histtype="stepfilled" if i == 0 else "step", alpha=0.55 if i == 0 else 1, lw=1.5)
    ax.set(xlabel=f"GeoGuessr score per location (points, bins of {bin_points})",
           ylabel="fraction of locations", xlim=(0, GEOGUESSR_MAX_SCORE))
    ax.legend(loc="upper center", fontsize=8)
    return png_base64(fig, PNG_DPI)


def _country_outlines(ax) -> None:
    g = load_or_none("country outlines on the map")
    for geom in [] if g is None else g.countries["geometry"]:
        for poly in getattr(geom, "geoms", [geom]):
            x, y = poly.exterior.xy
            ax.plot(x, y, color="#bbbbbb", lw=0.3)


def plot_world_map(true_latlon: np.ndarray, guess_latlon: np.ndarray, max_lines: int = 600) -> str:
    """Equirectangular map: truths (blue dots), guesses (red crosses) and a line between each pair."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    _country_outlines(ax)
    n = min(len(true_latlon), max_lines)
    for (tl, tn), (pl, pn) in zip(true_latlon[:n], guess_latlon[:n]):
        if abs(tn - pn) < 180:  # skip lines that would wrap around the map
            ax.plot([tn, pn], [tl, pl], color="#e07b39", lw=0.4, alpha=0.5)
    ax.scatter(true_latlon[:, 1], true_latlon[:, 0], s=6, c="#1f77b4", label="truth")
    ax.scatter(guess_latlon[:, 1], guess_latlon[:, 0], s=6, c="#d62728", marker="x", label="guess")
    ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude (°)", ylabel="latitude (°)", aspect="equal")
    ax.legend(loc="lower left", fontsize=8)
    return png_base64(fig, PNG_DPI)


def plot_country_confusion(names: list[str], counts: np.ndarray) -> str | None:
    """Row-normalised confusion (colour, with a colour bar) with the counts written in every non-empty cell; the
    last column (guesses outside these countries) is drawn in grey beside the matrix so that it cannot swamp the
    colour scale."""
    if not names:
        return None
    plt = pyplot()
    k = len(names)
    frac = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(2.2 + 0.42 * (k + 1), 1.4 + 0.42 * k))
    shown = np.ma.masked_array(frac, mask=np.zeros_like(frac, dtype=bool))
    shown.mask[:, -1] = True
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1, aspect="equal")
    ax.add_patch(plt.Rectangle((k - 0.5, -0.5), 1, k, color="#eeeeee", zorder=0))
    for i in range(k):
        for j in range(k + 1):
            if counts[i, j]:
                dark = j < k and frac[i, j] > 0.55
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if dark else ("#555555" if j == k else "black"))
    ax.axvline(k - 0.5, color="black", lw=1)
    ax.set_xticks(range(k + 1), [*names, "other"], rotation=90, fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set(xlabel="guessed country (other = outside these countries or at sea)", ylabel="true country")
    bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("fraction of the true country's locations")
    return png_base64(fig, PNG_DPI)


def plot_calibration(reliability: dict[str, list[dict]], score_bins: list[dict] | None) -> str | None:
    """Left: reliability diagram (mean confidence vs hit rate per bin, marker area ~ locations, diagonal = perfectly
    calibrated). Right: the model's expected score of its guess vs the score it got (binned means, points)."""
    if not any(reliability.values()) and not score_bins:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    ax = axes[0]
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    for name, bins in reliability.items():
        if bins:
            ece = expected_calibration_error(bins)
            n = np.array([b["n"] for b in bins])
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "-o", lw=1.2, ms=3,
                    label=f"{name} (ECE {100 * ece:.1f} pp)")
            ax.scatter([b["confidence"] for b in bins], [b["accuracy"] for b in bins],
                       s=10 + 200 * n / n.max(), alpha=0.3)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (model probability)", ylabel="accuracy (hit rate)",
           title="reliability")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    if score_bins:
        top = GEOGUESSR_MAX_SCORE
        ax.plot([0, top], [0, top], color="grey", ls=":", lw=1)
        n = np.array([b["n"] for b in score_bins])
        ax.plot([b["expected"] for b in score_bins], [b["actual"] for b in score_bins], "-o", ms=3,
                color="#d62728", label="binned means")
        ax.scatter([b["expected"] for b in score_bins], [b["actual"] for b in score_bins],
                   s=10 + 200 * n / n.max(), alpha=0.3, color="#d62728")
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="expected score of the guess (points, model's own estimate)",
               ylabel="score it got (points)", title="expected vs actual score")
        ax.legend(loc="upper left", fontsize=8)
    else:
        ax.axis("off")
    return png_base64(fig, PNG_DPI)


def score_calibration_bins(expected: np.ndarray, actual: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Expected scores (N,) and actual scores (N,) in points -> per non-empty bin of the expected score (equal
    width over 0..5000) {lo, hi, n, expected (mean), actual (mean)}."""
    out = []
    for b in calibration_bins(np.asarray(expected) / GEOGUESSR_MAX_SCORE, np.zeros(len(expected), bool), n_bins):
        m = ((np.asarray(expected) / GEOGUESSR_MAX_SCORE >= b["lo"])
             & ((np.asarray(expected) / GEOGUESSR_MAX_SCORE < b["hi"]) | (b["hi"] >= 1)))
        out.append({"lo": b["lo"] * GEOGUESSR_MAX_SCORE, "hi": b["hi"] * GEOGUESSR_MAX_SCORE, "n": int(m.sum()),
                    "expected": float(np.mean(np.asarray(expected)[m])), "actual": float(np.mean(actual[m]))})
    return out


# ---- page parts -----------------------------------------------------------------------------------------------
def _env():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    env.filters["num"] = lambda v, d=0: "n/a" if v is None else f"{v:,.{d}f}"
    return env


def _macro(name: str, *args):
    return str(getattr(_env().get_template("_parts.html.j2").module, name)(*args))


def _metric_rows(metrics: dict) -> list[tuple[str, dict]]:
    """Model rows, then the raw-pixel baseline (head and expected-score guess) right under them, then the
    other baselines."""
    base = metrics.get("baselines", {})
    px = base.get("raw_pixels")
    return ([("model (head guess)", metrics)]
            + [(f"model ({k} guess)", v) for k, v in metrics.get("guess_modes", {}).items()]
            + ([("baseline: raw_pixels (head guess)", px)]
               + [(f"baseline: raw_pixels ({k} guess)", v) for k, v in px.get("guess_modes", {}).items()]
               if px is not None else [])
            + [(f"baseline: {k}", v) for k, v in base.items() if k != "raw_pixels"])


def metric_table(metrics: dict, mode: str | None = None) -> dict[str, Any]:
    """Headers (with units) and rows of the metrics table; the played mode's row is flagged, and baselines the
    dataset could not give (no train split) are rows saying why."""
    heads = ([f"< {t:g} km (% of locations)" for t in ACCURACY_THRESHOLDS_KM]
             + ["country hit (%)", "median error (km)", "mean error (km)", "mean score (points)",
                "cell top-1 (%)", "cell top-5 (%)"])
    rows = []
    for name, m in _metric_rows(metrics):
        acc = [f"{100 * m['accuracy_km'][f'{t:g}']:.1f}%" for t in ACCURACY_THRESHOLDS_KM]
        ca = "n/a" if m.get("country_accuracy") is None else f"{100 * m['country_accuracy']:.1f}%"
        cells = [f"{100 * m[k]:.1f}%" if k in m else "–" for k in ("geocell_top1", "geocell_top5")]
        vals = acc + [ca, f"{m['median_km']:,.0f}", f"{m['mean_km']:,.0f}", f"{m['geoguessr_score']:,.0f}"] + cells
        rows.append({"name": name, "values": vals, "played": mode is not None and name == f"model ({mode} guess)"})
    base = metrics.get("baselines") or {}
    for k in (k for k in BASELINES_NEEDING_TRAIN if k not in base):
        why = (metrics.get("notes") or {}).get(k) or "it needs the dataset's train split, and this one has none"
        rows.append({"name": f"baseline: {k}", "values": None, "played": False, "missing": f"not computed: {why}"})
    return {"heads": heads, "rows": rows}


def metrics_table_html(metrics: dict, mode: str | None = None) -> str:
    """The metrics table as an HTML fragment."""
    return _macro("metrics_table", metric_table(metrics, mode))


def probe_rows(metrics: dict) -> list[list[str]]:
    """Rows of the probe table (:data:`PROBE_COLUMNS`): accuracy of the embedding's and the pixels' linear
    probe next to the majority-class rate."""
    emb, raw = metrics.get("probes") or {}, metrics.get("probes_raw_pixels") or {}
    pct = lambda p: "-" if p is None else f"{100 * p['accuracy']:.1f}%"
    rows = []
    for name in list(emb) + [n for n in raw if n not in emb]:
        ref = emb.get(name) or raw[name]
        rows.append([name, str(ref["n_classes"]), f"{100 * ref['majority']:.1f}%", pct(emb.get(name)),
                     pct(raw.get(name)), str(ref.get("n_eval", ""))])
    return rows


def warnings_html(metrics: dict) -> str:
    """The run's ``warnings`` (e.g. no better than raw pixels) in a red box, for the top of the page."""
    return _macro("warnings_box", list(metrics.get("warnings") or []))


def probes_html(metrics: dict) -> str:
    """The probe table and the notes on skipped checks."""
    return _macro("probes", PROBE_COLUMNS, probe_rows(metrics), dict(metrics.get("notes") or {}))


def aux_rows(metrics: dict) -> list[dict[str, str]]:
    """The auxiliary heads' metrics with names and units (MAE in the target's unit, accuracies in %)."""
    rows = []
    for k, v in (metrics.get("aux") or {}).items():
        label, unit = AUX_UNITS.get(k, (k, ""))
        value = "n/a" if v is None else (f"{100 * v:.1f}" if unit == "%" else f"{v:,.3g}")
        rows.append({"key": k, "label": label, "value": value, "unit": unit})
    return rows


def leaflet_assets(vendor_dir: Path | None = None) -> dict[str, str] | None:
    """The texts of the offline map files (``LEAFLET_FILES``) from ``vendor_dir`` (default ``<data>/web``), or
    None when one is missing. ``</`` is escaped so that no file can close the inline ``<script>``."""
    from model.paths import data_dir

    vendor_dir = Path(vendor_dir) if vendor_dir is not None else data_dir() / "web"
    if not all((vendor_dir / f).is_file() for f in LEAFLET_FILES):
        return None
    text = {f: (vendor_dir / f).read_text(encoding="utf-8") for f in LEAFLET_FILES}
    return {"js": text["leaflet.js"].replace("</", "<\\/"), "css": text["leaflet.css"].replace("</", "<\\/"),
            "topojson": text["topojson-client.min.js"].replace("</", "<\\/"),
            "world": text["countries-50m.json"].replace("</", "<\\/")}


def map_points(preds: Predictions, p: Played) -> list[list]:
    """Per location [true lat, true lon, guess lat, guess lon, error km, score, colour, label] for the
    interactive map (coordinates rounded to 1e-4 degrees, about 11 m)."""
    out = []
    for i, loc in enumerate(preds.ids):
        t, g = preds.true_latlon[i], p.latlon[i]
        tc = "" if preds.true_country is None else preds.true_country[i]
        gc = "" if p.country is None else p.country[i]
        label = f"{loc}: truth {tc or '?'}, guess {gc or '?'}, {p.dist_km[i]:,.0f} km, {p.score[i]:,.0f} points"
        out.append([round(float(t[0]), 4), round(float(t[1]), 4), round(float(g[0]), 4), round(float(g[1]), 4),
                    round(float(p.dist_km[i]), 1), int(p.score[i]), error_colour(float(p.dist_km[i])), label])
    return out


def thumbnail_uri(path: Path, size: int = 160) -> str | None:
    """A JPEG data URI of the image at ``path`` shrunk to ``size`` px on its long side, or None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
    except (OSError, ValueError) as e:
        log.warning("thumbnail %s: %s", path, e)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def gallery(preds: Predictions, p: Played, dataset_dir: str | Path | None, views: list[int], k: int) -> list[dict]:
    """The k worst guesses: id, truth, guess, countries, error (km), score (points) and the views as thumbnails
    (from ``dataset_dir/images/<id>_<view>.jpg``; missing ones are None)."""
    out = []
    for i in worst_cases(p.dist_km, k):
        loc = preds.ids[i]
        thumbs = []
        for v in views:
            path = Path(dataset_dir) / "images" / f"{loc}_{v}.jpg" if dataset_dir else None
            thumbs.append({"view": v, "uri": thumbnail_uri(path) if path is not None and path.is_file() else None})
        out.append({"id": loc, "truth": [float(x) for x in preds.true_latlon[i]],
                    "guess": [float(x) for x in p.latlon[i]],
                    "true_country": "" if preds.true_country is None else preds.true_country[i],
                    "guess_country": "" if p.country is None else p.country[i],
                    "km": float(p.dist_km[i]), "score": float(p.score[i]), "thumbs": thumbs})
    return out


def calibration(preds: Predictions, p: Played) -> tuple[dict[str, list[dict]], list[dict] | None]:
    """(reliability bins per series, expected-vs-actual score bins or None). Series: the top geocell's probability
    vs the cell being right, and (with cell countries) the most probable country's summed probability vs it being
    the true country."""
    probs = softmax(preds.logits)
    rel = {"top geocell": calibration_bins(probs.max(1), probs.argmax(1) == np.asarray(preds.true_cells))}
    if preds.cell_country is not None and preds.true_country is not None:
        name, conf = country_confidence(probs, preds.cell_country)
        known = np.asarray(preds.true_country) != ""
        rel["top country"] = calibration_bins(conf[known], name[known] == np.asarray(preds.true_country)[known])
    score_bins = None
    if preds.expected_score is not None and "expected_score" in preds.guesses:
        es = preds.guesses["expected_score"]
        d = haversine_km(es[:, 0], es[:, 1], preds.true_latlon[:, 0], preds.true_latlon[:, 1])
        score_bins = score_calibration_bins(preds.expected_score, np.asarray(geoguessr_score(d), dtype=float))
    return rel, score_bins


# ---- the report ---------------------------------------------------------------------------------------------
def _write_predictions_csv(path: Path, preds: Predictions, p: Played) -> None:
    """One row per location; the columns of the first edition, then the played mode's guess (appended)."""
    d_km = haversine_km(preds.pred_latlon[:, 0], preds.pred_latlon[:, 1], preds.true_latlon[:, 0],
                        preds.true_latlon[:, 1])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "lat", "lon", "pred_lat", "pred_lon", "error_km", "true_cell", "pred_cell", "country",
                    "pred_country", "played_mode", "played_lat", "played_lon", "played_error_km", "played_score",
                    "played_country"])
        for i, loc_id in enumerate(preds.ids):
            w.writerow([loc_id, *preds.true_latlon[i], *preds.pred_latlon[i], round(float(d_km[i]), 3),
                        int(preds.true_cells[i]), int(preds.logits[i].argmax()),
                        "" if preds.true_country is None else preds.true_country[i],
                        "" if preds.pred_country is None else preds.pred_country[i],
                        p.mode, *(round(float(x), 6) for x in p.latlon[i]), round(float(p.dist_km[i]), 3),
                        int(p.score[i]), "" if p.country is None else p.country[i]])


def render_report(metrics: dict, preds: Predictions, top_countries: int = 15, mode: str = DEFAULT_GUESS_MODE,
                  vendor_dir: Path | None = None, gallery_size: int = 12) -> str:
    """The report page (HTML text) of one evaluation, showing the guesses of ``mode``."""
    p = played(preds, mode)
    true = preds.true_latlon
    dists = {f"{p.mode} guess (played)": p.dist_km}
    for name, g in preds.guesses.items():
        if name != p.mode:
            dists[f"{name} guess"] = haversine_km(g[:, 0], g[:, 1], true[:, 0], true[:, 1])
    base_km = {k: haversine_km(g[:, 0], g[:, 1], true[:, 0], true[:, 1]) for k, g in preds.baselines.items()}
    scores = {f"{p.mode} guess": p.score}
    if "raw_pixels" in base_km:
        scores["raw-pixel baseline (head guess)"] = np.asarray(geoguessr_score(base_km["raw_pixels"]), dtype=float)
    countries = (country_rows(preds.true_country, p.country, p.score, p.dist_km)
                 if preds.true_country is not None else [])
    conf_names, conf_counts = (confusion_counts(preds.true_country, p.country, top_countries)
                               if preds.true_country is not None and p.country is not None else ([], None))
    rel, score_bins = calibration(preds, p)
    assets = leaflet_assets(vendor_dir)
    figures = {"cdf": plot_error_cdf(dists, base_km), "hist": plot_score_histogram(scores),
               "map": plot_world_map(true, p.latlon), "calibration": plot_calibration(rel, score_bins),
               "confusion": plot_country_confusion(conf_names, conf_counts) if conf_names else None}
    ctx = {
        "metrics": metrics, "mode": p.mode, "mode_note": p.note, "n": len(preds.ids),
        "table": metric_table(metrics, p.mode), "aux": aux_rows(metrics),
        "probe_columns": PROBE_COLUMNS, "probe_rows": probe_rows(metrics), "notes": dict(metrics.get("notes") or {}),
        "warnings": list(metrics.get("warnings") or []), "figures": figures, "countries": countries,
        "reliability": {k: (expected_calibration_error(v), sum(b["n"] for b in v)) for k, v in rel.items() if v},
        "gallery": gallery(preds, p, metrics.get("dataset"), list(metrics.get("views") or []), gallery_size),
        "assets": assets, "points": map_points(preds, p) if assets else [],
        "legend": [(f"< {lim:,} km" if lim else f"≥ {MAP_ERROR_COLOURS[-2][0]:,} km", c)
                   for lim, c in MAP_ERROR_COLOURS],
        "top_countries": top_countries, "thresholds": ACCURACY_THRESHOLDS_KM,
    }
    return _env().get_template("report.html.j2").render(**ctx)


def write_report(out_dir: Path, metrics: dict, preds: Predictions, top_countries: int = 15,
                 mode: str = DEFAULT_GUESS_MODE, vendor_dir: Path | None = None, gallery_size: int = 12) -> Path:
    """Write metrics.json, predictions.csv and report.html into ``out_dir``; returns the HTML path. ``mode``: the
    guess mode the plots, the per-country table, the map and the gallery show (default: the one the bot plays)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    p = played(preds, mode)
    _write_predictions_csv(out_dir / "predictions.csv", preds, p)
    path = out_dir / "report.html"
    path.write_text(render_report(metrics, preds, top_countries, mode, vendor_dir, gallery_size), encoding="utf-8")
    return path
