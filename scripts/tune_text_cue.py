"""Tune the text cue's fusion weights on a validation render (never on test) and print the grid.

    python scripts/tune_text_cue.py --run checkpoints/demo --data data/worlds/text-val512 --split val \
        [--out tune.json] [--read-only]

OCR reads are cached (``train.textcue.read_locations``), so the grid costs only fusion. The weights tuned here are
the defaults of ``model.text.cue.TextCueConfig``; docs/text_cue.md records the run that chose them.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GRID = {
    "null_weight": [0.01, 0.03, 0.1, 0.3, 1.0],
    "image_power": [0.25, 0.5, 1.0],
    "snap_threshold": [0.2, 0.3, 0.4, 0.6],
    "script_weight": [0.0, 3.0],
    "word_weight": [0.0, 3.0, 10.0],
}


def image_outputs(run: Path, ds, ids: list[str], views: list[int], batch: int = 32):
    """Head probabilities (N, C) and refined points (N, 2) of the run on the dataset's views."""
    from model.inference import Predictor

    pred = Predictor.load(run, device="cpu")
    probs, refined = [], []
    for s in range(0, len(ids), batch):
        locs = [[ds.image_path(i, h) for h in views] for i in ids[s:s + batch]]
        for p in pred.predict_batch(locs):
            probs.append(p.cell_probs)
            refined.append(p.refined_guess if p.refined_guess is not None else p.head_guess)
    return pred, np.stack(probs), np.asarray(refined, np.float64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run folder (or an exported checkpoint)")
    ap.add_argument("--data", required=True, help="validation dataset folder (a render at the bot's resolution)")
    ap.add_argument("--split", default="val", help="split to tune on (default val)")
    ap.add_argument("--cache", default=None, help="cache folder for OCR reads (default: model.paths.cache_dir())")
    ap.add_argument("--out", default=None, help="write the grid and the best setting as JSON here")
    ap.add_argument("--read-only", action="store_true", help="only fill the OCR cache")
    args = ap.parse_args(argv)

    from model.formats.dataset import load_dataset
    from model.paths import cache_dir
    from model.text.cue import TextCue, TextCueConfig
    from model.text.gazetteer import load_gazetteer
    from train.embed import dataset_fingerprint
    from train.evaluate import countries_at, geolocation_metrics
    from train.textcue import read_locations, text_cue_metrics

    ds = load_dataset(args.data)
    locs = ds.split(args.split)
    ids, views = [loc.id for loc in locs], ds.views
    base = TextCueConfig()
    t0 = time.perf_counter()
    reads, per_view = read_locations(ds, ids, views, base, Path(args.cache) if args.cache else cache_dir(),
                                     dataset_fingerprint(ds))
    print(f"reads of {len(ids)} locations x {len(views)} views: {time.perf_counter() - t0:.1f} s "
          f"({per_view:.3f} s/view uncached)")
    if args.read_only:
        return 0
    pred, probs, refined = image_outputs(Path(args.run), ds, ids, views)
    true = np.array([[loc.lat, loc.lon] for loc in locs])
    true_country = np.array([loc.aux.get("country", "") for loc in locs])
    gaz = load_gazetteer()
    observer = TextCue(gaz, base)  # lookups and priors do not depend on the fusion weights tuned below
    evidence = {i: observer.observe(reads.get(i, [])) for i in ids}
    rows = []
    for values in itertools.product(*GRID.values()):
        cfg = replace(base, **dict(zip(GRID, values)))
        m, _, _ = text_cue_metrics(TextCue(gaz, cfg), reads, ids, probs, true, true_country, pred.centroids_deg,
                                   pred.cell_country, refined, geolocation_metrics, countries_at, evidence)
        rows.append({**dict(zip(GRID, values)), "score_on": m["on"]["geoguessr_score"],
                     "score_off": m["off"]["geoguessr_score"], "read_rate": m["read_rate"],
                     "precision": m["match_precision"]})
    rows.sort(key=lambda r: -r["score_on"])
    for r in rows[:15]:
        print(json.dumps(r))
    best = rows[0]
    print(f"best on {args.split} ({len(ids)} rounds): off {best['score_off']:.0f} -> on {best['score_on']:.0f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"rounds": len(ids), "grid": rows, "best": best,
                                              "base": asdict(base)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
