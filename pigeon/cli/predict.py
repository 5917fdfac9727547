"""``pigeon predict``: the view images of one place -> a guess and the top geocells."""
from __future__ import annotations

import argparse
import json

from model.guess import DEFAULT_GUESS_MODE, GUESS_MODES
from pigeon.cli._common import add_device, add_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict the location of one place from its view images",
                       description="All IMG arguments are views of ONE location (e.g. the 4 headings of a round).")
    add_run(p, "run directory")
    p.add_argument("images", nargs="+", metavar="IMG")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--mode", default=DEFAULT_GUESS_MODE, choices=GUESS_MODES,
                   help="which point `guess` is")
    add_device(p, default="auto")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from model.inference import Predictor

    pred = Predictor.load(args.run, device=args.device, guess_mode=args.mode, top_k=args.top_k)
    result = pred.predict(args.images)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    from rich.console import Console

    from pigeon.cli._render import print_table

    con = Console()
    g = result.guess
    con.print(f"[bold]guess[/] {g[0]:.4f}, {g[1]:.4f}  ({args.mode}; expected score "
              f"{result.expected_score:.0f}; {result.timings_ms['total_ms']:.0f} ms)")
    rows = [(str(i), str(c["cell"]), f"{c['p']:.3f}", f"{c['lat']:.3f}", f"{c['lon']:.3f}", c["country"] or "")
            for i, c in enumerate(result.top_cells, 1)]
    print_table(rows, ["rank", "cell", "p", "lat", "lon", "country"], right=(), console=con)
    return 0
