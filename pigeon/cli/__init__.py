"""``pigeon`` console script: a thin dispatcher over the verbs each package registers.

Each verb is one module ``pigeon/cli/<verb>.py``, listed in ``COMMAND_MODULES`` in the order ``pigeon --help``
shows them; each exposes ``register(subparsers)``, which adds its verb and sets ``func=handler`` on its parser.
Options several verbs share live in ``pigeon.cli._common`` (plus ``_bot`` for play/duel/demo and ``_training``
for pretrain/train/eval), and every table goes through ``pigeon.cli._render``. Handlers import their heavy
dependencies (torch, playwright) lazily, so ``pigeon --help`` stays fast and ``pigeon arena`` never loads torch.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from model.config import ConfigError

COMMAND_MODULES = [
    "pigeon.cli.geocells",
    "pigeon.cli.index",
    "pigeon.cli.predict",
    "pigeon.cli.arena",
    "pigeon.cli.stats",
    "pigeon.cli.play",
    "pigeon.cli.login",
    "pigeon.cli.duel",
    "pigeon.cli.tournament",
    "pigeon.cli.demo",
    "pigeon.cli.pretrain",
    "pigeon.cli.train",
    "pigeon.cli.eval",
    "pigeon.cli.world",
]


DESCRIPTION = """Image geolocation (an open re-implementation of PIGEON, CVPR 2024) that plays GeoGuessr-like games.

Build a world and train a model (world, geocells, pretrain, train, index, eval), ask it where a photo was taken
(predict), run the local arena game (arena), let the bot play or duel there or on geoguessr.com (play, duel,
tournament, login, demo) and look at the results (stats)."""
EPILOG = """Config overrides are spelled --set KEY=VALUE on every verb (e.g. --set head.lr=1e-3); trailing KEY=VALUE
words still work where a verb takes no other positionals. Run `pigeon COMMAND --help` for a verb's options."""


def version() -> str:
    """The installed package's version (``pyproject.toml``), or 'unknown' when run from an uninstalled tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("pigeon")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pigeon", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pigeon {version()}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


# batch verbs that train, embed or render: their processes keep freed memory for the next allocation
# (model.workers.retain_freed_memory); the servers and the bot keep the C allocator's defaults
HEAVY_COMMANDS = frozenset({"train", "pretrain", "eval", "index", "geocells", "world"})
OWN_LOGGERS = ("model", "train", "bot", "pigeon", "world", "arena", "__main__")


def configure_logging(verbose: bool) -> None:
    """Our packages log progress at INFO; third-party loggers (faiss's loader, PIL, matplotlib, ...) only from
    WARNING up, unless ``-v`` asks for everything at DEBUG. faiss announces at INFO which SIMD build it loads and
    why the others failed, which reads like an error to a user."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        os.environ["COLUMNS"] = "140"  # rich tables in logs and pipes (make, CI) instead of 80 squeezed columns
    if args.command in HEAVY_COMMANDS:
        from model.workers import retain_freed_memory

        retain_freed_memory()
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        if args.verbose or os.environ.get("PIGEON_TRACEBACK"):
            raise
        print(f"pigeon {args.command}: error: {e}", file=sys.stderr)
        return 2
