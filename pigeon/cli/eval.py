"""``pigeon eval``: evaluate a run on a dataset split -> metrics.json + report.html (+ the ablation table)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pigeon.cli._common import add_device, add_run
from pigeon.cli._training import RichProgress, show_metrics


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run: metrics.json + report.html (+ ablation table)")
    add_run(p, "run folder written by pigeon train")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--ablation", action="store_true", help="also train and evaluate the cumulative ablations")
    add_device(p, strict=True)
    p.add_argument("--cache", help="embedding cache folder (default RUN/cache)")
    p.add_argument("--top-countries", type=int, default=15)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from train.distributed import resolve_device
    from train.evaluate import evaluate_run
    from train.report import write_report

    device = resolve_device(args.device or "auto")
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else None
    with RichProgress() as progress:
        metrics, preds = evaluate_run(Path(args.run), Path(args.data), args.split, device, cache, progress)
        html = write_report(out, metrics, preds, args.top_countries)
        if args.ablation:
            from train.ablation import run_ablation

            run_ablation(Path(args.run), Path(args.data), out, args.split, device, metrics, cache, progress)
    show_metrics(f"{args.run} on the {args.split} split", metrics)
    print(f"report: {html}")
    return 0
