"""CLI verbs ``pigeon index`` (build the retrieval index of a run) and ``pigeon predict`` (images -> guess)."""
from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build the retrieval-refinement index of a run from a dataset's train split",
                       description="Embed the dataset's train split with the run's model, cluster locations per "
                                   "geocell (OPTICS) and write RUN/index/ (faiss prototypes + manifest).")
    p.add_argument("--run", required=True, help="run directory (from `pigeon train`)")
    p.add_argument("--data", required=True, help="dataset folder whose train split is indexed")
    p.add_argument("--split", default="train")
    p.add_argument("--config", help="TOML with [retrieval]-style keys of RetrievalConfig")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("overrides", nargs="*", help="key=value overrides of RetrievalConfig")
    p.set_defaults(func=_index)

    p = sub.add_parser("predict", help="predict the location of one place from its view images",
                       description="All IMG arguments are views of ONE location (e.g. the 4 headings of a round).")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("images", nargs="+", metavar="IMG")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--mode", default="refined", choices=["refined", "head", "expected_score"],
                   help="which point `guess` is")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_predict)


def _index(args) -> int:
    from rich.progress import Progress

    from model.config import load_config
    from model.inference import build_index
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


def _predict(args) -> int:
    from model.inference import Predictor

    pred = Predictor.load(args.run, device=args.device, guess_mode=args.mode, top_k=args.top_k)
    result = pred.predict(args.images)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    con = Console()
    g = result.guess
    con.print(f"[bold]guess[/] {g[0]:.4f}, {g[1]:.4f}  ({args.mode}; expected score "
              f"{result.expected_score:.0f}; {result.timings_ms['total_ms']:.0f} ms)")
    t = Table("rank", "cell", "p", "lat", "lon", "country")
    for i, c in enumerate(result.top_cells, 1):
        t.add_row(str(i), str(c["cell"]), f"{c['p']:.3f}", f"{c['lat']:.3f}", f"{c['lon']:.3f}", c["country"])
    con.print(t)
    return 0
