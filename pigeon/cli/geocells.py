"""``pigeon geocells build``: training points CSV -> geocell directory (see model.geocells.cells)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pigeon.cli._common import add_config, add_set_overrides


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``geocells`` verb (sub-verb ``build``) to the ``pigeon`` dispatcher."""
    parser = sub.add_parser("geocells", help="build semantic (or naive) geocells from training coordinates")
    verbs = parser.add_subparsers(dest="geocells_command", metavar="VERB", required=True)
    build = verbs.add_parser("build", help="points CSV (lat, lon[, id, split]) -> geocells.csv/.geojson, "
                                           "assignments.csv, manifest.json")
    build.add_argument("--points", required=True, type=Path, help="CSV with columns lat, lon (+ optional id, "
                                                                 "split: only split == 'train' rows are used)")
    build.add_argument("--out", required=True, type=Path, help="output directory")
    add_config(build, "GeocellConfig TOML (default: built-in PIGEON constants = configs/geocells.toml)")
    build.add_argument("--naive", action="store_true", help="rectangular NaiveCell baseline instead")
    add_set_overrides(build, "max_cell_size=80")
    build.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from model.config import load_config
    from model.geocells.cells import GeocellConfig, build_geocells_dir
    from pigeon.cli._render import print_table

    cfg = load_config(GeocellConfig, args.config, args.overrides)
    if args.naive:
        cfg = replace(cfg, method="naive")
    result = build_geocells_dir(args.points, args.out, cfg)
    stats = result.stats
    rows = [(key.replace("_", " "), str(stats[key]))
            for key in ("points", "cells", "isolated", "isolated_points", "size_min", "size_median", "size_max")]
    rows += [(f"  isolated: {reason}", str(n)) for reason, n in sorted(stats["isolated_by_reason"].items())]
    print_table(rows, ["", "value"], title=f"{cfg.method} geocells -> {args.out}", title_justify="center",
                right={"value"})
    return 0
