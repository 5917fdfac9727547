"""Options several ``pigeon`` verbs share (run folder, device, config + overrides, arena database) and the
default paths behind them. Each helper adds one option with the flags, type and default every verb uses; the help
text stays the verb's own where it says something specific to it.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from model.device import check_device_name
from model.paths import data_dir


def default_db() -> Path:
    """The arena's SQLite file: ``<data>/arena/arena.sqlite``."""
    return data_dir() / "arena" / "arena.sqlite"


def add_run(p: argparse.ArgumentParser, help: str, *, required: bool = True,
            type: Callable[[str], Any] = str) -> None:
    """``--run DIR``: a run folder written by ``pigeon train``."""
    if required:
        p.add_argument("--run", required=True, type=type, help=help)
    else:
        p.add_argument("--run", type=type, default=None, help=help)


def _device_name(text: str) -> str:
    try:
        return check_device_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_device(p: argparse.ArgumentParser, *, default: str | None = None, strict: bool = False,
               help: str | None = None) -> None:
    """``--device``: auto, cpu, cuda, cuda:N or mps (``strict``: checked while parsing, else by the verb)."""
    p.add_argument("--device", default=default, type=_device_name if strict else str,
                   help=help or "auto, cpu, cuda, cuda:N or mps")


def add_config(p: argparse.ArgumentParser, help: str, *, type: Callable[[str], Any] = Path) -> None:
    """``--config TOML``: the verb's config file (default: its built-in or shipped defaults)."""
    p.add_argument("--config", type=type, default=None, help=help)


class _ExtendOverrides(argparse.Action):
    """Adds to ``namespace.overrides`` instead of replacing it, so ``--set`` and trailing ``key=value`` words
    (given in any order) end up in one list, in command-line order."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, items + (list(values) if isinstance(values, list) else [values]))


def add_overrides(p: argparse.ArgumentParser, help: str, *, metavar: str | None = None) -> None:
    """Config overrides, spelled ``--set KEY=VALUE`` (repeatable) like every verb; trailing ``KEY=VALUE`` words
    are accepted too (the older spelling). Both land in ``args.overrides``."""
    p.add_argument("--set", dest="overrides", action=_ExtendOverrides, default=[], metavar="KEY=VALUE",
                   help=f"{help} (repeatable)")
    p.add_argument("overrides", nargs="*", action=_ExtendOverrides, default=[], metavar=metavar or "KEY=VALUE",
                   help="same as --set KEY=VALUE (older spelling)")


def add_set_overrides(p: argparse.ArgumentParser, example: str) -> None:
    """Repeatable ``--set KEY=VALUE`` config overrides (for verbs whose positionals mean something else)."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config key, e.g. --set {example} (repeatable)")


def add_db(p: argparse.ArgumentParser) -> None:
    """``--db FILE``: the arena's SQLite database."""
    p.add_argument("--db", type=Path, default=None, help="SQLite file (default <data>/arena/arena.sqlite)")
