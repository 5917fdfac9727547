"""What ``pigeon pretrain``, ``pigeon train`` and ``pigeon eval`` share: the training options, the config /
dataset / device they resolve to, the progress bars, and the metrics table.

Run under torchrun for DDP, e.g. ``torchrun --nproc_per_node 2 -m pigeon train --config configs/demo.toml``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from pigeon.cli._common import add_config, add_device, add_overrides


def training_options() -> argparse.ArgumentParser:
    """Parent parser of ``pretrain`` and ``train``: --config, --data, --device, --fresh and config overrides."""
    common = argparse.ArgumentParser(add_help=False)
    add_config(common, "TOML config (e.g. configs/demo.toml)", type=str)
    common.add_argument("--data", help="dataset folder (overrides data.path)")
    add_device(common, strict=True, help="overrides runtime.device")
    common.add_argument(
        "--fresh", action="store_true", help="discard checkpoints in --out instead of resuming"
    )
    add_overrides(common, "config overrides, e.g. head.lr=1e-3", metavar="key=value")
    return common


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


def load_train_config(args: argparse.Namespace):
    from model.config import load_config
    from train.config import TrainConfig

    return load_config(TrainConfig, args.config, args.overrides)


def dataset_dir(args: argparse.Namespace, cfg) -> Path:
    data = args.data or cfg.data.path
    if not data:
        raise ValueError("no dataset: pass --data DIR or set data.path in the config")
    return Path(data)


def train_device(args: argparse.Namespace, cfg):
    from train.distributed import resolve_device

    return resolve_device(args.device or cfg.runtime.device)


def is_main() -> bool:
    """Rank 0 (or no torchrun): the process that prints."""
    return int(os.environ.get("RANK", "0")) == 0


def show_metrics(title: str, metrics: dict) -> None:
    """Metrics table: one row per metric, one column per guess mode (just ``value`` without extra modes)."""
    from pigeon.cli._render import print_table

    modes = {"head": metrics, **metrics.get("guess_modes", {})}
    columns = ["metric", *(name if len(modes) > 1 else "value" for name in modes)]
    rows = []

    def row(label, key, fmt):
        vals = [m.get(key) if isinstance(key, str) else m.get("accuracy_km", {}).get(key[1]) for m in modes.values()]
        if any(v is not None for v in vals):
            rows.append([label, *(fmt(v) if v is not None else "-" for v in vals)])

    for k in metrics.get("accuracy_km", {}):
        row(f"< {k} km", ("acc", k), lambda v: f"{100 * v:.1f}%")
    for k in ("country_accuracy", "geocell_top1", "geocell_top5"):
        row(k, k, lambda v: f"{100 * v:.1f}%")
    for k in ("median_km", "mean_km", "geoguessr_score"):
        row(k, k, lambda v: f"{v:.1f}")
    print_table(rows, columns, title=title, title_justify="center", right=columns[1:])
