"""What ``pigeon play``, ``pigeon duel`` and ``pigeon demo`` share: the bot's options, its config, an arena to
play in, the guess function of a run, and the report table of a game."""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pigeon.cli._common import add_config, add_overrides

REPORT_COLUMNS = ("round", "truth", "guess", "km", "score", "capture ms", "infer ms", "guess ms", "round ms")


def add_bot_options(p: argparse.ArgumentParser, rounds: bool = True, live: bool = False) -> None:
    """--config, --rounds, --headless/--headed, --matchlog, the trailing config overrides and (``live``)
    --quiet."""
    add_config(p, "bot config TOML (default configs/bot.toml)")
    if live:
        p.add_argument("--quiet", "-q", action="store_true",
                       help="no live view while playing (it is drawn only on a terminal anyway); "
                            "the round table at the end is printed either way")
    if rounds:
        p.add_argument("--rounds", type=int, default=None, help="rounds to play (default [play] rounds)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--headless", dest="headless", action="store_true", default=None, help="no window (default)")
    g.add_argument("--headed", dest="headless", action="store_false", help="show the browser window")
    p.add_argument("--matchlog", type=Path, default=None, help="SQLite match log (default [play] matchlog)")
    add_overrides(p, "config overrides, e.g. play.human_delay_s=[2,9]", metavar="KEY=VALUE")


def bot_config(args: argparse.Namespace, extra: list[str] | None = None):
    """The bot config: --config, then the options as overrides, then the trailing overrides, then ``extra``."""
    from bot.config import load_bot_config

    ov = list(args.overrides)
    if getattr(args, "rounds", None) is not None:
        ov.append(f"play.rounds={args.rounds}")
    if getattr(args, "mode", None) is not None:
        ov.append(f'play.mode="{args.mode}"')
    if args.headless is not None:
        ov.append(f"browser.headless={'true' if args.headless else 'false'}")
    if args.matchlog is not None:
        ov.append(f'play.matchlog="{args.matchlog.resolve()}"')
    return load_bot_config(args.config, ov + (extra or []))


@contextlib.contextmanager
def arena_url(args: argparse.Namespace, cfg: Any) -> Iterator[str]:
    """The arena URL: --url, or one started on loopback for the duration (world: --world or the demo's)."""
    if args.url:
        yield args.url.rstrip("/")
        return
    import tempfile

    from arena import make_server
    from model.paths import project_path

    world = args.world or project_path(cfg.demo.world)
    if not (Path(world) / "manifest.json").is_file():
        raise FileNotFoundError(f"no dataset at {world} (manifest.json missing): pass --world DIR or --url URL")
    with tempfile.TemporaryDirectory(prefix="pigeon-arena-") as tmp:
        srv = make_server(world, Path(tmp) / "arena.sqlite", split=cfg.demo.split)
        print(f"arena on {srv.url} (world {world}, split {cfg.demo.split})", file=sys.stderr)
        try:
            yield srv.url
        finally:
            srv.stop()


def load_guess(run: Path | None, cfg: Any):
    """(guess function, model info) of ``run``, default the demo's run."""
    seat = load_seat(run, cfg)
    return seat.guess, seat.model


@dataclass(frozen=True)
class Seat:
    """A loaded bot: its guess function, what the match log records about its model (run, manifest hash, ...,
    and ``guess_mode``), and the heat-map -> country totals lookup of its geocells (for the live view)."""

    guess: Any
    model: dict
    countries: Any


def load_seat(run: Path | None, cfg: Any, guess_mode: str | None = None) -> Seat:
    """Load ``run`` (default the demo's) with ``guess_mode`` (default ``[play] guess_mode``)."""
    from bot.guessing import load_guess_fn
    from bot.matchlog import model_info
    from model.paths import project_path
    from pigeon.cli._live import country_lookup

    run_dir = run or project_path(cfg.demo.run)
    mode = guess_mode or cfg.play.guess_mode
    guess, predictor = load_guess_fn(run_dir, cfg.demo.device, mode, cfg.text_cue)
    return Seat(guess, {**model_info(run_dir), "guess_mode": mode},
                country_lookup(predictor.centroids_deg, predictor.cell_country))


def matchlog_path(cfg: Any) -> Path:
    from model.paths import project_path

    return project_path(cfg.play.matchlog)


def print_report(report: Any, title: str, matchlog: Path | None = None) -> None:
    """Table of a game: per round truth, guess, distance, score, timings; the total underneath."""
    from rich.console import Console

    from pigeon.cli._render import print_table

    columns = list(REPORT_COLUMNS)
    text = any(r.guess is not None and getattr(r.guess, "text", None) is not None for r in report.rounds)
    if text:
        columns.append("signs read")
    duel = any(r.result is not None and r.result.hp_own is not None for r in report.rounds)
    if duel:
        columns.append("HP")
    rows = []
    for r in report.rounds:
        res, g = r.result, r.guess
        truth = (f"{res.truth_lat_deg:.2f}, {res.truth_lon_deg:.2f} {res.truth_country or ''}"
                 if res and res.truth_lat_deg is not None else "-")
        row = [str(r.round_n), truth, f"{g.lat_deg:.2f}, {g.lon_deg:.2f}" if g else "no guess",
               f"{res.dist_km:,.1f}" if res and res.dist_km is not None else "-",
               f"{res.score:,}" if res and res.score is not None else "-",
               f"{r.capture_ms:.0f}", f"{r.infer_ms:.0f}", f"{r.guess_ms:.0f}", f"{r.total_ms:.0f}"]
        if text:
            row.append(signs_read(getattr(g, "text", None)) if g else "-")
        if duel:
            row.append(f"{res.hp_own} : {res.hp_opponent}" if res else "-")
        rows.append(row)
    s = report.summary
    times = [r.total_ms for r in report.rounds if r.placed is not None]
    total = ["total", f"{len(report.rounds)} rounds", "", "",
             f"{s.total_score:,}" if s is not None and s.total_score is not None else "-", "", "", "",
             f"median {sorted(times)[len(times) // 2]:.0f}" if times else "-"]
    if text:
        total.append("")
    if duel:
        total.append(f"{s.hp_own} : {s.hp_opponent} " + ("draw" if s.draw else "won" if s.won else "lost")
                     if s is not None else "-")
    console = Console()
    print_table(rows, columns, title=title, right=set(columns) - {"truth", "guess", "signs read"}, total=total,
                console=console)
    if matchlog is not None:
        console.print(f"match log: {matchlog}  (pigeon stats --matchlog {matchlog})")


def signs_read(text: dict | None, width: int = 40) -> str:
    """One cell of the round table: the best place matched ("-> Riga LV 87% snap") after what was read."""
    if not text:
        return "-"
    words = ", ".join(t for _v, t, _c in text.get("reads", [])[:4])
    best = text.get("best")
    if best:
        tail = f" -> {best['name']} {best['country']} {100 * best['posterior']:.0f}%" + (" snap" if text.get("snapped") else "")
    else:
        tail = ""
    out = (words[: max(0, width - len(tail))] + tail) if words else (tail or "nothing read")
    return out.strip()
