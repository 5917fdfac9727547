"""``pigeon pretrain``: multi-task contrastive pretraining of the CLIP backbone only."""
from __future__ import annotations

import argparse
from pathlib import Path

from pigeon.cli._training import RichProgress, dataset_dir, is_main, load_train_config, train_device, training_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", parents=[training_options()], help="multi-task contrastive pretraining only")
    p.add_argument("--out", required=True, help="run folder (checkpoints under OUT/state/pretrain)")
    p.set_defaults(func=cmd_pretrain)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from train.pipeline import run_pretraining

    cfg = load_train_config(args)
    with RichProgress() as progress:
        path = run_pretraining(cfg, dataset_dir(args, cfg), Path(args.out), train_device(args, cfg), args.fresh,
                               progress if is_main() else None)
    if is_main():
        print(f"pretrained CLIP weights: {path} (use as backbone.pretrained)")
    return 0
