"""``pigeon login``: sign in to geoguessr.com once in a browser window and save the session for ``pigeon play``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pigeon.cli._common import add_config, add_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("login", help="sign in to geoguessr.com in a browser once; saves the session (0600)")
    add_config(p, "bot config TOML (default configs/bot.toml)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to save the Playwright storage state (default [geoguessr] storage_state)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the sign-in (default 300)")
    add_overrides(p, "config overrides, e.g. geoguessr.base_url=...", metavar="KEY=VALUE")
    p.set_defaults(func=run_login)


def run_login(args: argparse.Namespace) -> int:
    """Headed by default (a person types the password; the bot never sees it); the file is written 0600 and its
    contents are never printed."""
    from bot.config import load_bot_config
    from bot.play import geoguessr_login
    from model.paths import project_path

    cfg = load_bot_config(args.config, ["browser.headless=false", *args.overrides])
    out = args.out or project_path(cfg.geoguessr.storage_state)
    print(f"sign in to {cfg.geoguessr.base_url} in the browser window (waiting up to {args.timeout:.0f} s)",
          file=sys.stderr)
    try:
        path = geoguessr_login(cfg, out, args.timeout)
    except TimeoutError as e:
        print(f"pigeon login: {e}", file=sys.stderr)
        return 1
    print(f"saved the GeoGuessr session to {path} (mode 600); `pigeon play --site geoguessr` uses it when "
          f"{cfg.geoguessr.cookie_env} is not set")
    return 0
