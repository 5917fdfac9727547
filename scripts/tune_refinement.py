"""Choose the refinement's top-K and temperature on validation data (never on the test split).

    python scripts/tune_refinement.py --run runs/demo --data data/worlds/demo-tune --split val \
        [--top-k 1 3 5 10] [--temperature 0.5 1.6 5 10 20 50] [--metric score|km25|km1]

PIGEON's T = 1.6 belongs to the scale of CLIP ViT-L embedding distances; another backbone has other distances, so
T (and K) should be chosen again for it. Embeds the split once with the run's Predictor, then scores every
(K, T) pair against the head's guess and prints a table; the best pair by ``--metric`` (mean GeoGuessr score by
default) goes into the run's training config as ``retrieval.top_k`` / ``retrieval.temperature``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.formats.dataset import load_dataset  # noqa: E402
from model.geo.geography import geoguessr_score, haversine_km, threshold_accuracies  # noqa: E402
from model.index import embed_dataset_locations  # noqa: E402
from model.views import RETRIEVAL_FUSION, fuse_views  # noqa: E402
from model.inference import Predictor  # noqa: E402


def metrics(guess: np.ndarray, true: np.ndarray) -> dict[str, float]:
    d = haversine_km(guess[:, 0], guess[:, 1], true[:, 0], true[:, 1])
    acc = threshold_accuracies(d, (1, 25, 200, 750))
    return {**{f"km{k}": v for k, v in acc.items()}, "median_km": float(np.median(d)),
            "score": float(geoguessr_score(d).mean())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--top-k", type=int, nargs="+", default=[1, 3, 5, 10])
    ap.add_argument("--temperature", type=float, nargs="+", default=[0.5, 1.6, 5.0, 10.0, 20.0, 50.0])
    ap.add_argument("--metric", choices=["score", "km25", "km1"], default="score")
    args = ap.parse_args()
    if args.split == "test":
        raise SystemExit("tune on validation data, not on the test split")
    pred = Predictor.load(args.run, device="cpu", warmup=False)
    if pred.index is None:
        raise SystemExit(f"{args.run} has no index/: train it or run `pigeon index` first")
    ds = load_dataset(args.data)
    locs = ds.split(args.split)
    if not locs:
        raise SystemExit(f"{args.data} has no {args.split!r} locations")
    views = embed_dataset_locations(pred, ds, locs)  # (N, V, D)
    emb = fuse_views(views, RETRIEVAL_FUSION)  # what the index holds
    import torch

    with torch.inference_mode():
        head_in = torch.from_numpy(fuse_views(views, pred.info.fusion))
        probs = torch.softmax(pred.model.head(head_in)["cell"].float(), -1).double().numpy()
    true = np.array([[loc.lat, loc.lon] for loc in locs])
    head = metrics(pred.centroids_deg[probs.argmax(1)], true)
    rows = [("head", "-", head)]
    for k in args.top_k:
        for t in args.temperature:
            out = pred.index.refine(emb, probs, pred.centroids_deg, top_k=k, temperature=t)
            rows.append((str(k), f"{t:g}", metrics(out["latlon"], true)))
    print(f"{len(locs)} {args.split} locations of {args.data}")
    print(f"{'K':>4} {'T':>6} {'1 km':>7} {'25 km':>7} {'200 km':>7} {'750 km':>7} {'median':>8} {'score':>7}")
    for k, t, m in rows:
        print(f"{k:>4} {t:>6} {100 * m['km1']:6.2f}% {100 * m['km25']:6.2f}% {100 * m['km200']:6.2f}% "
              f"{100 * m['km750']:6.2f}% {m['median_km']:8.0f} {m['score']:7.1f}")
    best = max(rows[1:], key=lambda r: (r[2][args.metric], r[2]["score"]))
    print(f"best by {args.metric}: retrieval.top_k={best[0]} retrieval.temperature={best[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
