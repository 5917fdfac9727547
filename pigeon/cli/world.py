"""``pigeon world``: render the synthetic street world, import real photos, draw a contact sheet."""

from __future__ import annotations

import argparse
from pathlib import Path

from pigeon.cli._common import add_config, add_set_overrides


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``world`` verb and its sub-verbs to the ``pigeon`` dispatcher."""
    parser = sub.add_parser("world", help="synthetic street-view datasets and photo importers")
    verbs = parser.add_subparsers(dest="world_command", metavar="VERB", required=True)

    render = verbs.add_parser("render", help="render N locations (4 views each) into a dataset folder")
    render.add_argument(
        "--seed", type=_non_negative_int, required=True, help="dataset seed (same seed -> same bytes)"
    )
    render.add_argument("--locations", type=_non_negative_int, required=True, help="number of locations")
    render.add_argument("--out", type=Path, required=True, help="output dataset folder (new or empty)")
    render.add_argument(
        "--size", type=_non_negative_int, default=None, help="image side in pixels (default: config)"
    )
    render.add_argument(
        "--workers", type=_non_negative_int, default=None, help="processes (default or 0: all cores)"
    )
    add_config(render, "WorldConfig TOML (default configs/world.toml)")
    add_set_overrides(render, "sampler.include='[\"CN\"]'")
    render.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    render.set_defaults(func=_render)

    for name, help_text in (
        ("import-osv5m", "OSV-5M-style CSV (id, latitude, longitude) + images/<id>.jpg"),
        ("import-exif", "a folder of photos with EXIF GPS tags"),
    ):
        imp = verbs.add_parser(name, help=help_text)
        if name == "import-osv5m":
            imp.add_argument(
                "--csv", type=Path, required=True, help="CSV with columns id, latitude, longitude"
            )
        imp.add_argument(
            "--images", type=Path, required=True, help="folder with the images (searched recursively)"
        )
        imp.add_argument("--out", type=Path, required=True, help="output dataset folder (new or empty)")
        imp.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the split assignment")
        imp.add_argument(
            "--split", default="auto", help="auto (seeded geographic blocks) or train/val/test for all"
        )
        imp.add_argument(
            "--max-side", type=_non_negative_int, default=None, help="downscale larger images to this side"
        )
        imp.add_argument(
            "--quality", type=_non_negative_int, default=92, help="JPEG quality of the re-encoded images"
        )
        add_config(imp, "WorldConfig TOML for the split rule")
        imp.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
        imp.set_defaults(func=_import)

    sheet = verbs.add_parser("contact-sheet", help="PNG of views of locations spread over the globe")
    sheet.add_argument("--data", type=Path, required=True, help="dataset folder")
    sheet.add_argument("--out", type=Path, required=True, help="output PNG")
    sheet.add_argument("--n", type=_non_negative_int, default=16, help="number of locations")
    sheet.add_argument("--thumb", type=_non_negative_int, default=192, help="pixel side of each view")
    sheet.set_defaults(func=_contact_sheet)


def _progress(what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # no auto-refresh thread: the render pool may then fork safely (see model.workers.pool_context)
    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        transient=False,
        auto_refresh=False,
    )


def _render(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console

    from world.build import default_workers, render_world
    from world.config import load_world_config

    overrides = list(args.overrides)
    if args.size is not None:
        overrides.append(f"render.image_size={args.size}")
    cfg = load_world_config(args.config, overrides)
    workers = args.workers if args.workers else default_workers()
    start = time.perf_counter()
    drawing_since = [start]
    bar, started = _progress("rendering"), []
    task = bar.add_task("render", total=args.locations, rate="")

    def advance(k: int) -> None:
        if k == 0:  # inputs checked, geodata looked up: drawing starts now, and so does the bar
            drawing_since[0] = time.perf_counter()
            bar.start()
            started.append(True)
            return
        done = bar.tasks[0].completed + k
        rate = done / max(time.perf_counter() - drawing_since[0], 1e-6)
        bar.update(task, advance=k, rate=f"{rate:.1f} loc/s", refresh=True)

    try:
        manifest = render_world(args.out, args.seed, args.locations, cfg, workers=workers, progress=advance)
    finally:
        if started:
            bar.stop()
    counts = manifest["counts"]
    Console().print(
        f"wrote {counts['locations']} locations ({counts['train']} train, {counts['val']} val, "
        f"{counts['test']} test) x {len(manifest['views'])} views to {args.out} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from rich.console import Console

    from world.config import load_world_config
    from world.importer import import_exif, import_osv5m

    split_cfg = load_world_config(args.config).split
    common = dict(
        seed=args.seed,
        split=args.split,
        split_cfg=split_cfg,
        max_side=args.max_side,
        quality=args.quality,
        overwrite=args.overwrite,
    )
    if args.world_command == "import-osv5m":
        manifest, report = import_osv5m(args.csv, args.images, args.out, **common)
    else:
        manifest, report = import_exif(args.images, args.out, **common)
    console = Console()
    counts = manifest["counts"]
    console.print(
        f"imported {report.imported} photos ({counts['train']} train, {counts['val']} val, "
        f"{counts['test']} test) into {args.out}"
    )
    for reason, n in sorted(report.skipped.items()):
        console.print(f"  skipped {n}: {reason} (e.g. {', '.join(report.examples.get(reason, []))})")
    return 0


def _contact_sheet(args: argparse.Namespace) -> int:
    from world.contact import contact_sheet

    path = contact_sheet(args.data, args.out, n=args.n, thumb=args.thumb)
    print(f"wrote {path}")
    return 0
