"""Evaluation report: metrics.json, predictions.csv and a self-contained report.html with embedded PNG plots
(error CDF, world map of guesses vs truths with country outlines when the geodata is installed, confusion
between the most frequent true countries). matplotlib runs on the Agg backend.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
from pathlib import Path

import numpy as np

from model.geo.geodata import load_or_none
from model.geo.geography import ACCURACY_THRESHOLDS_KM, haversine_km
from train.evaluate import Predictions

log = logging.getLogger(__name__)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def plot_error_cdf(dist_km: np.ndarray, baselines: dict[str, np.ndarray]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, d in {"model": dist_km, **baselines}.items():
        d = np.sort(np.maximum(d, 0.1))
        ax.step(
            d, np.arange(1, len(d) + 1) / len(d), where="post", label=name, lw=2 if name == "model" else 1
        )
    for t in ACCURACY_THRESHOLDS_KM:
        ax.axvline(t, color="grey", lw=0.5, ls=":")
    ax.set(xscale="log", xlabel="great-circle error (km)", ylabel="fraction of locations within",
           xlim=(0.1, 20100), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _country_outlines(ax) -> None:
    g = load_or_none("country outlines on the map")
    for geom in [] if g is None else g.countries["geometry"]:
        for poly in getattr(geom, "geoms", [geom]):
            x, y = poly.exterior.xy
            ax.plot(x, y, color="#bbbbbb", lw=0.3)


def plot_world_map(p: Predictions, max_lines: int = 600) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 5))
    _country_outlines(ax)
    n = min(len(p.ids), max_lines)
    for (tl, tn), (pl, pn) in zip(p.true_latlon[:n], p.pred_latlon[:n]):
        if abs(tn - pn) < 180:  # skip lines that would wrap around the map
            ax.plot([tn, pn], [tl, pl], color="#e07b39", lw=0.4, alpha=0.5)
    ax.scatter(p.true_latlon[:, 1], p.true_latlon[:, 0], s=6, c="#1f77b4", label="truth")
    ax.scatter(p.pred_latlon[:, 1], p.pred_latlon[:, 0], s=6, c="#d62728", marker="x", label="guess")
    ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude", ylabel="latitude", aspect="equal")
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def plot_country_confusion(p: Predictions, top_n: int) -> str | None:
    if p.true_country is None or p.pred_country is None:
        return None
    true, pred = np.asarray(p.true_country), np.asarray(p.pred_country)
    names, counts = np.unique(true[true != ""], return_counts=True)
    if len(names) == 0:
        return None
    top = list(names[np.argsort(-counts)][:top_n])
    cols = top + ["other"]
    m = np.zeros((len(top), len(cols)))
    for t, g in zip(true, pred):
        if t in top:
            m[top.index(t), cols.index(g) if g in top else -1] += 1
    m /= m.sum(axis=1, keepdims=True).clip(min=1)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1 + 0.45 * len(cols), 1 + 0.45 * len(top)))
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=8)
    ax.set_yticks(range(len(top)), top, fontsize=8)
    ax.set(xlabel="predicted country", ylabel="true country")
    return _png(fig)


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


PROBE_COLUMNS = ["probe", "classes", "majority", "embedding", "raw 8x8 pixels", "eval n"]


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
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in metrics.get("warnings") or [])
    return f"<div class='warn'><b>Warning</b><ul>{warn}</ul></div>" if warn else ""


def probes_html(metrics: dict) -> str:
    """The probe table and the notes on skipped checks."""
    out = ""
    rows = probe_rows(metrics)
    if rows:
        out += ("<h2>Linear probes (train split -> this split)</h2><p>multinomial logistic regression on "
                "standardised features: the run's fused embedding vs raw 8x8-pixel thumbnails of the views; "
                "majority = the most frequent train class's rate on this split</p><table><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in PROBE_COLUMNS) + "</tr>"
                + "".join("<tr><th>" + html.escape(r[0]) + "</th>" + "".join(f"<td>{html.escape(v)}</td>"
                                                                               for v in r[1:]) + "</tr>"
                          for r in rows) + "</table>")
    notes = metrics.get("notes") or {}
    if notes:
        out += "<ul>" + "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>"
                                for k, v in notes.items()) + "</ul>"
    return out


def metrics_table_html(metrics: dict) -> str:
    heads = [f"&lt;{t} km" for t in ACCURACY_THRESHOLDS_KM] + ["country", "median km", "mean km", "score",
                                                                  "cell top-1", "cell top-5"]
    rows = []
    for name, m in _metric_rows(metrics):
        acc = [f"{100 * m['accuracy_km'][f'{t:g}']:.1f}%" for t in ACCURACY_THRESHOLDS_KM]
        ca = "n/a" if m.get("country_accuracy") is None else f"{100 * m['country_accuracy']:.1f}%"
        cells = [f"{100 * m[k]:.1f}%" if k in m else "" for k in ("geocell_top1", "geocell_top5")]
        vals = (
            acc + [ca, f"{m['median_km']:.0f}", f"{m['mean_km']:.0f}", f"{m['geoguessr_score']:.0f}"] + cells
        )
        rows.append(
            "<tr><th>" + html.escape(name) + "</th>" + "".join(f"<td>{v}</td>" for v in vals) + "</tr>"
        )
    return (
        "<table><tr><th></th>"
        + "".join(f"<th>{h}</th>" for h in heads)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def write_report(out_dir: Path, metrics: dict, preds: Predictions, top_countries: int = 15) -> Path:
    """Write metrics.json, predictions.csv and report.html into ``out_dir``; returns the HTML path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    d_km = haversine_km(preds.pred_latlon[:, 0], preds.pred_latlon[:, 1], preds.true_latlon[:, 0],
                        preds.true_latlon[:, 1])
    with open(out_dir / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "id",
                "lat",
                "lon",
                "pred_lat",
                "pred_lon",
                "error_km",
                "true_cell",
                "pred_cell",
                "country",
                "pred_country",
            ]
        )
        for i, loc_id in enumerate(preds.ids):
            w.writerow([loc_id, *preds.true_latlon[i], *preds.pred_latlon[i], round(float(d_km[i]), 3),
                        int(preds.true_cells[i]), int(preds.logits[i].argmax()),
                        "" if preds.true_country is None else preds.true_country[i],
                        "" if preds.pred_country is None else preds.pred_country[i]])
    base_km = {k: haversine_km(g[:, 0], g[:, 1], preds.true_latlon[:, 0], preds.true_latlon[:, 1])
               for k, g in preds.baselines.items()}
    figures = [("Error CDF", plot_error_cdf(d_km, base_km)), ("Guesses vs truths", plot_world_map(preds)),
               ("Country confusion (top true countries)", plot_country_confusion(preds, top_countries))]
    aux = metrics.get("aux") or {}
    aux_html = (
        (
            "<h2>Auxiliary heads</h2><table>"
            + "".join(
                f"<tr><th>{html.escape(k)}</th><td>{'n/a' if v is None else f'{v:.4g}'}</td></tr>"
                for k, v in aux.items()
            )
            + "</table>"
        )
        if aux
        else ""
    )
    body = aux_html + "".join(
        f"<h2>{t}</h2><img alt='{t}' src='data:image/png;base64,{b}'>" for t, b in figures if b
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>pigeon evaluation</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}img{max-width:100%}.warn{background:#fde2e1;border:2px solid #c00;"
        "color:#900;padding:4px 12px;margin:1em 0}</style></head><body>"
        f"<h1>pigeon evaluation: {html.escape(str(metrics.get('run', '')))}</h1>"
        f"<p>split <b>{html.escape(str(metrics.get('split', '')))}</b>, {metrics['n']} locations, dataset "
        f"{html.escape(str(metrics.get('dataset', '')))}</p>{warnings_html(metrics)}"
        f"{metrics_table_html(metrics)}{probes_html(metrics)}{body}</body></html>"
    )
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
