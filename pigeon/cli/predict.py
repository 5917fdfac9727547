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
    p.add_argument("images", nargs="+", metavar="IMG",
                   help="image files of the location's views (jpg/png), in heading order for a concat-fusion run")
    p.add_argument("--top-k", type=int, default=5, metavar="K",
                   help="how many of the most probable geocells (and countries) to list (default 5)")
    p.add_argument("--mode", default=DEFAULT_GUESS_MODE, choices=GUESS_MODES,
                   help=f"which point is the guess (default {DEFAULT_GUESS_MODE}, the one the bot plays): "
                        "expected_score maximises the expected GeoGuessr score, refined uses the retrieval index, "
                        "head is the most probable cell's centroid")
    add_device(p, default="auto")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from model.inference import Predictor

    pred = Predictor.load(args.run, device=args.device, guess_mode=args.mode, top_k=args.top_k)
    result = pred.predict(args.images)
    if args.json:
        out = result.to_dict()
        out["countries"] = [{"country": c, "p": round(p, 6)}
                            for c, p in country_totals(result.cell_probs, pred.cell_country)[: args.top_k]]
        print(json.dumps(out, indent=2))
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
    totals = country_totals(result.cell_probs, pred.cell_country)[: args.top_k]
    con.print("[bold]countries[/] " + "  ".join(f"{c or 'no country'} {100 * p:.0f} %" for c, p in totals))
    return 0


def country_totals(cell_probs, cell_country) -> list[tuple[str, float]]:
    """Cell probabilities (C,) summed by the cells' countries (C,) -> [(ISO alpha-2, probability)], most probable
    first ('' = cells without a country)."""
    totals: dict[str, float] = {}
    for p, c in zip(cell_probs, cell_country):
        totals[c or ""] = totals.get(c or "", 0.0) + float(p)
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
