"""``pigeon train``: geocells, pretraining, embeddings and the head -> a run folder (then its evaluation).

Run under torchrun for DDP, e.g. ``torchrun --nproc_per_node 2 -m pigeon train --config configs/demo.toml``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pigeon.cli._training import (
    RichProgress,
    dataset_dir,
    is_main,
    load_train_config,
    show_metrics,
    train_device,
    training_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", parents=[training_options()], help="geocells, pretraining, embeddings, head -> run folder"
    )
    p.add_argument("--out", help="run folder (default runs/<name>)")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation on eval.split after training")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from train.pipeline import run_training

    cfg = load_train_config(args)
    out = Path(args.out or Path("runs") / cfg.name)
    with RichProgress() as progress:
        manifest = run_training(cfg, dataset_dir(args, cfg), out, train_device(args, cfg), args.fresh,
                                progress if is_main() else None, evaluate=not args.no_eval)
    if manifest is not None:
        split = cfg.eval.split
        if split in manifest["metrics"]:
            show_metrics(f"{out} on the {split} split", manifest["metrics"][split])
        print(f"run written to {out}")
    return 0
