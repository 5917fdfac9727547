"""``pigeon index``: build the retrieval-refinement index of a run from a dataset's train split."""
from __future__ import annotations

import argparse
import json

from pigeon.cli._common import add_config, add_device, add_overrides, add_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build the retrieval-refinement index of a run from a dataset's train split",
                       description="Embed the dataset's train split with the run's model, cluster locations per "
                                   "geocell (OPTICS) and write RUN/index/ (faiss prototypes + manifest).")
    add_run(p, "run directory (from `pigeon train`)")
    p.add_argument("--data", required=True, help="dataset folder whose train split is indexed")
    p.add_argument("--split", default="train",
                   help="which split's locations become the index (default train; indexing the split you "
                        "evaluate on leaks its answers)")
    add_config(p, "TOML with [retrieval]-style keys of RetrievalConfig", type=str)
    add_device(p, default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="images per forward pass while embedding (default 32; lower it if memory runs out)")
    add_overrides(p, "override a RetrievalConfig key, e.g. --set min_samples=3")
    p.set_defaults(func=run_index)


def run_index(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from model.config import load_config
    from model.index import build_index
    from model.retrieval import RetrievalConfig

    cfg = load_config(RetrievalConfig, args.config, args.overrides)
    with Progress() as bar:
        task = bar.add_task("embedding", total=None)
        out = build_index(args.run, args.data, cfg, args.split, args.batch_size, args.device,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"index written to {out}: {manifest['num_prototypes']} prototypes ({manifest['num_fallback']} fallback) "
          f"over {manifest['num_locations']} locations in {manifest['num_cells']} cells")
    return 0
