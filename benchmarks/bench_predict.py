"""End-to-end ``Predictor.predict`` for the 4 views of one round with the demo checkpoint on CPU (target < 100 ms).

Timed from the encoded image bytes (decode + preprocess + network + refinement + expected-score guess), one round at a
time as the bot calls it, after the load-time warm-up. Also the load time, the cost of the first call after load
and the batched throughput. Model: ``checkpoints/demo`` (the shipped demo run) unless ``--run``; views: the
held-out rounds of ``checkpoints/demo/holdout`` unless ``--world``.
With the text cue (``model.text``, on unless ``--no-text-cue``) the same rounds are timed again with OCR of every
view at its full resolution (the holdout is 512 px), reported as ``text_cue`` with the added time per round.
Usage: ``python benchmarks/bench_predict.py [--run DIR] [--world DIR] [--rounds 40] [--repeat 3] [--no-text-cue]``.
Writes benchmarks/results/predict.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._util import pct, peak_rss_mib, write  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=ROOT / "checkpoints" / "demo")
    ap.add_argument("--world", type=Path, default=ROOT / "checkpoints" / "demo" / "holdout")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-text-cue", action="store_true", help="skip the timing with the text cue")
    args = ap.parse_args()

    import torch

    from model.formats.dataset import load_dataset
    from model.inference import Predictor

    if not (args.run / "manifest.json").is_file():
        raise SystemExit(f"{args.run} is not a trained run (no manifest.json): pass --run, or train the demo "
                         "(docs/training.md)")
    ds = load_dataset(args.world)
    rounds = [[p.read_bytes() for p in ds.image_paths(loc.id)] for loc in ds.locations[: args.rounds]]
    if not rounds:
        raise SystemExit(f"{args.world} has no locations")

    t = time.perf_counter()
    pred = Predictor.load(args.run, device="cpu")
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    pred.predict(rounds[0])
    first_ms = (time.perf_counter() - t) * 1e3

    per_round, phases = [], {}
    for _ in range(args.repeat):
        for views in rounds:
            t = time.perf_counter()
            p = pred.predict(views)
            per_round.append((time.perf_counter() - t) * 1e3)
            for k, v in p.timings_ms.items():
                phases.setdefault(k, []).append(v)
    t = time.perf_counter()
    pred.predict_batch(rounds)
    batched_ms = (time.perf_counter() - t) * 1e3 / len(rounds)

    median = statistics.median(per_round)
    text = None if args.no_text_cue else time_text_cue(args.run, rounds, median)
    write("predict", {
        "what": "Predictor.predict(the 4 view files of a round, bytes read from disk) on CPU, after warm-up; medians of one run",
        "run": str(args.run), "world": str(args.world), "torch_threads": torch.get_num_threads(),
        "backbone": pred.info.backbone,
        "image_size": pred.info.image_size, "num_cells": int(len(pred.centroids_deg)),
        "refinement_index": pred.index is not None,
        "views_per_round": len(rounds[0]), "rounds": len(rounds), "calls": len(per_round),
        "load_s": round(load_s, 3), "first_call_after_load_ms": round(first_ms, 2),
        "round_ms": {"median": round(median, 2), "p90": round(pct(per_round, 0.9), 2),
                     "max": round(max(per_round), 2)},
        "phase_ms_median": {k: round(statistics.median(v), 2) for k, v in phases.items()},
        "batched_ms_per_round": round(batched_ms, 2),
        "target_ms": 100.0, "meets_target": median < 100.0,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "text_cue": text,
    })
    return 0


def time_text_cue(run: Path, rounds: list, plain_median_ms: float) -> dict:
    """Predictor.predict with the text cue (OCR of every view + gazetteer + fusion), one pass over the rounds."""
    from model.inference import Predictor
    from model.text.cue import TextCueConfig

    t = time.perf_counter()
    pred = Predictor.load(run, device="cpu", text_cue=TextCueConfig())
    load_s = time.perf_counter() - t
    per_round, text_ms = [], []
    for views in rounds:
        t = time.perf_counter()
        p = pred.predict(views)
        per_round.append((time.perf_counter() - t) * 1e3)
        text_ms.append(p.timings_ms["text_ms"])
    from PIL import Image
    import io

    sizes = sorted({Image.open(io.BytesIO(v)).size for views in rounds for v in views})
    median = statistics.median(per_round)
    engines = pred.ocr if isinstance(pred.ocr, list) else [pred.ocr]
    return {"engine": engines[0].name, "engines_side_by_side": len(engines), "view_sizes": [list(s) for s in sizes], "load_s": round(load_s, 3),
            "round_ms": {"median": round(median, 1), "p90": round(pct(per_round, 0.9), 1),
                         "max": round(max(per_round), 1)},
            "text_ms_median": round(statistics.median(text_ms), 1),
            "added_ms_median": round(median - plain_median_ms, 1)}


if __name__ == "__main__":
    raise SystemExit(main())
