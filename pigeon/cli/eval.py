"""``pigeon eval``: evaluate a run on a dataset split -> metrics.json + report.html (+ the ablation table)."""
from __future__ import annotations

import argparse
from pathlib import Path

from model.guess import DEFAULT_GUESS_MODE, GUESS_MODES
from pigeon.cli._common import add_device, add_run
from pigeon.cli._training import RichProgress, show_metrics


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run: metrics.json + report.html (+ ablation table)")
    add_run(p, "run folder written by pigeon train")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="which of the dataset's splits to evaluate on (default test)")
    p.add_argument("--mode", default=DEFAULT_GUESS_MODE, choices=GUESS_MODES,
                   help=f"guess mode the report's plots, country table, map and gallery show (default "
                        f"{DEFAULT_GUESS_MODE}, the one the bot plays); the metrics table lists every mode")
    p.add_argument("--ablation", action="store_true", help="also train and evaluate the cumulative ablations")
    add_device(p, strict=True)
    p.add_argument("--cache", help="embedding cache folder (default: the run config's runtime.cache_dir, else "
                                   "$PIGEON_CACHE, else data/cache)")
    p.add_argument("--text-cue", nargs="?", type=int, const=0, default=None, metavar="N",
                   help="also play the guess with the text cue (read the signs; docs/text_cue.md) and report it "
                        "next to the guess without it (metrics.json 'text_cue'); N: a seeded sample of N rounds "
                        "(OCR costs tenths of a second per view), default all. Weights: the bot config's [text_cue]")
    p.add_argument("--top-countries", type=int, default=15, metavar="N",
                   help="rows and columns of the report's country confusion matrix (default 15)")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from train.distributed import resolve_device
    from train.evaluate import evaluate_run
    from train.report import write_report

    device = resolve_device(args.device or "auto")
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else None
    with RichProgress() as progress:
        text_cue = None
        if args.text_cue is not None:
            from bot.config import load_bot_config

            text_cue = load_bot_config().text_cue
        metrics, preds = evaluate_run(Path(args.run), Path(args.data), args.split, device, cache, progress,
                                      text_cue, args.text_cue or 0)
        html = write_report(out, metrics, preds, args.top_countries, args.mode)
        if args.ablation:
            from train.ablation import run_ablation

            run_ablation(Path(args.run), Path(args.data), out, args.split, device, metrics, cache, progress)
    show_metrics(f"{args.run} on the {args.split} split", metrics)
    show_sanity(metrics)
    show_text_cue(metrics.get("text_cue"))
    print(f"report: {html}")
    return 0


def show_sanity(metrics: dict) -> None:
    """The model next to the raw-pixel baseline (head and expected-score guess), the probe table (embedding vs
    pixels vs majority), notes on skipped checks and the warnings, last so they are not scrolled away."""
    from rich.console import Console

    from pigeon.cli._render import print_table
    from train.report import PROBE_COLUMNS, probe_rows

    px = (metrics.get("baselines") or {}).get("raw_pixels")
    if px is not None:
        modes = lambda m: (m.get("guess_modes") or {}).get("expected_score")
        cols = {"model head": metrics, "model expected_score": modes(metrics),
                "raw pixels head": px, "raw pixels expected_score": modes(px)}
        cols = {k: v for k, v in cols.items() if v is not None}
        pct, num = (lambda v: f"{100 * v:.1f}%"), (lambda v: f"{v:.1f}")
        specs = ([(f"< {k} km", lambda m, k=k: m["accuracy_km"].get(k), pct) for k in metrics["accuracy_km"]]
                 + [(k, lambda m, k=k: m.get(k), pct) for k in ("country_accuracy", "geocell_top1")]
                 + [(k, lambda m, k=k: m.get(k), num) for k in ("median_km", "mean_km", "geoguessr_score")])
        rows = []
        for label, get, fmt in specs:
            vals = [get(m) for m in cols.values()]
            if any(v is not None for v in vals):
                rows.append([label, *("-" if v is None else fmt(v) for v in vals)])
        print_table(rows, ["metric", *cols], title="model vs linear classifier on 8x8-pixel thumbnails",
                    title_justify="center", right=list(cols))
    rows = probe_rows(metrics)
    if rows:
        print_table(rows, PROBE_COLUMNS, title="linear probes: embedding vs raw pixels vs majority class",
                    title_justify="center", right=PROBE_COLUMNS[1:])
    console = Console()
    for k, v in (metrics.get("notes") or {}).items():
        console.print(f"note: {k}: {v}", markup=False)
    for w in metrics.get("warnings") or []:
        console.print(f"WARNING: {w}", style="bold red", markup=False)


def show_text_cue(t: dict | None) -> None:
    """The played guess without and with the text cue on the same rounds, and how often a sign located us."""
    if not t:
        return
    from pigeon.cli._render import print_table

    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    rows = [[k, f"{t[k]['geoguessr_score']:.0f}", pct(t[k].get("country_accuracy")),
             f"{t[k]['median_km']:.1f}", pct(t[k]["accuracy_km"].get("25"))] for k in ("off", "on")]
    print_table(rows, ["text cue", "GeoGuessr score", "country", "median km", "< 25 km"],
                title=f"text cue on {t['rounds']} rounds: read rate {pct(t['read_rate'])}, precision of confident "
                      f"place matches {pct(t['match_precision'])} (within {t['correct_km']:g} km)",
                title_justify="center", right=["GeoGuessr score", "country", "median km", "< 25 km"])
