"""CLI verbs ``pigeon pretrain``, ``pigeon train`` and ``pigeon eval``: thin maps from arguments to library
calls.

Run under torchrun for DDP, e.g. ``torchrun --nproc_per_node 2 -m pigeon train --config configs/demo.toml``.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class RichProgress:
    """``progress(stage, done, total, **info)`` callback drawing one rich bar per stage."""

    def __init__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int, **info) -> None:
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total, info="")
        self.bar.update(self.tasks[stage], completed=done, total=total, info=text)


def _load_cfg(args):
    from model.config import load_config
    from train.config import TrainConfig

    return load_config(TrainConfig, args.config, args.overrides)


def _data_dir(args, cfg) -> Path:
    data = args.data or cfg.data.path
    if not data:
        raise ValueError("no dataset: pass --data DIR or set data.path in the config")
    return Path(data)


def _device(args, cfg):
    from train.distributed import resolve_device

    return resolve_device(args.device or cfg.runtime.device)


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _show_metrics(title: str, metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    modes = {"head": metrics, **metrics.get("guess_modes", {})}
    t = Table(title=title)
    t.add_column("metric")
    for name in modes:
        t.add_column(name if len(modes) > 1 else "value", justify="right")

    def row(label, key, fmt):
        vals = [m.get(key) if isinstance(key, str) else m.get("accuracy_km", {}).get(key[1]) for m in modes.values()]
        if any(v is not None for v in vals):
            t.add_row(label, *(fmt(v) if v is not None else "-" for v in vals))

    for k in metrics.get("accuracy_km", {}):
        row(f"< {k} km", ("acc", k), lambda v: f"{100 * v:.1f}%")
    for k in ("country_accuracy", "geocell_top1", "geocell_top5"):
        row(k, k, lambda v: f"{100 * v:.1f}%")
    for k in ("median_km", "mean_km", "geoguessr_score"):
        row(k, k, lambda v: f"{v:.1f}")
    Console().print(t)


def cmd_pretrain(args) -> int:
    from train.pipeline import run_pretraining

    cfg = _load_cfg(args)
    with RichProgress() as progress:
        path = run_pretraining(cfg, _data_dir(args, cfg), Path(args.out), _device(args, cfg), args.fresh,
                               progress if _is_main() else None)
    if _is_main():
        print(f"pretrained CLIP weights: {path} (use as backbone.pretrained)")
    return 0


def cmd_train(args) -> int:
    from train.pipeline import run_training

    cfg = _load_cfg(args)
    out = Path(args.out or Path("runs") / cfg.name)
    with RichProgress() as progress:
        manifest = run_training(cfg, _data_dir(args, cfg), out, _device(args, cfg), args.fresh,
                                progress if _is_main() else None, evaluate=not args.no_eval)
    if manifest is not None:
        split = cfg.eval.split
        if split in manifest["metrics"]:
            _show_metrics(f"{out} on the {split} split", manifest["metrics"][split])
        print(f"run written to {out}")
    return 0


def cmd_eval(args) -> int:
    from train.distributed import resolve_device
    from train.evaluate import evaluate_run
    from train.report import write_report

    device = resolve_device(args.device or "auto")
    out = Path(args.out)
    with RichProgress() as progress:
        metrics, preds = evaluate_run(Path(args.run), Path(args.data), args.split, device,
                                      Path(args.cache) if args.cache else None, progress)
        html = write_report(out, metrics, preds, args.top_countries)
        if args.ablation:
            from train.ablation import run_ablation

            run_ablation(Path(args.run), Path(args.data), out, args.split, device, metrics,
                         Path(args.cache) if args.cache else None, progress)
    _show_metrics(f"{args.run} on the {args.split} split", metrics)
    print(f"report: {html}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML config (e.g. configs/demo.toml)")
    common.add_argument("--data", help="dataset folder (overrides data.path)")
    common.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides runtime.device")
    common.add_argument(
        "--fresh", action="store_true", help="discard checkpoints in --out instead of resuming"
    )
    common.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. head.lr=1e-3"
    )

    p = sub.add_parser("pretrain", parents=[common], help="multi-task contrastive pretraining only")
    p.add_argument("--out", required=True, help="run folder (checkpoints under OUT/state/pretrain)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser(
        "train", parents=[common], help="geocells, pretraining, embeddings, head -> run folder"
    )
    p.add_argument("--out", help="run folder (default runs/<name>)")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation on eval.split after training")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a run: metrics.json + report.html (+ ablation table)")
    p.add_argument("--run", required=True, help="run folder written by pigeon train")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--ablation", action="store_true", help="also train and evaluate the cumulative ablations")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--cache", help="embedding cache folder (default RUN/cache)")
    p.add_argument("--top-countries", type=int, default=15)
    p.set_defaults(func=cmd_eval)
