"""Bot benchmark and soak: the bot plays ``--rounds`` arena rounds in a row (classic games of ``--game-rounds``)
with a trained model, in headless Debian Chromium against the real arena on loopback.

Reports the per-round time the bot needs (capture of 4 headings + inference + placing the guess: median, p90,
max, and each phase), and the soak outcome: rounds completed, failures, retries, guess methods, and that no
round got a second guess (checked in the arena's database). Model: the shipped ``checkpoints/demo`` when it
exists, else a tiny run trained on the spot (recorded in the JSON). World: its 40 held-out locations
(``checkpoints/demo/holdout``) when they exist, else the arena's small synthetic demo world.
The text cue (OCR of the captured views) is on, as in the bot's default config, unless ``--no-text-cue``.
Usage: ``python benchmarks/bench_bot.py [--rounds 100] [--game-rounds 5] [--run DIR [--label TEXT]] [--world DIR]
[--no-text-cue]``.
Writes benchmarks/results/bot.json.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _util import pct, peak_rss_mib, write


def tiny_run(tmp: Path) -> Path:
    """A tiny trained run (the test suite's recipe, tests/trainkit.py) when no demo checkpoint exists."""
    sys.path.insert(0, str(ROOT / "tests"))
    from trainkit import TINY_OVERRIDES, make_dataset

    from pigeon.cli import main

    data = make_dataset(tmp / "ds", n=40, size=40)
    if main(["train", "--data", str(data), "--out", str(tmp / "run"), *TINY_OVERRIDES, "pretrain.max_steps=2"]) != 0:
        raise SystemExit("training the tiny run failed")
    return tmp / "run"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--game-rounds", type=int, default=5)
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--world", type=Path, default=None)
    ap.add_argument("--label", default=None, help="what --run is, recorded in the JSON")
    ap.add_argument("--no-text-cue", action="store_true", help="play without reading the signs")
    args = ap.parse_args()

    from arena import make_server
    from arena.demo_world import make_demo_world
    from bot.config import BotConfig, PlayConfig
    from bot.controller import BotError
    from bot.driver import open_browser
    from bot.guessing import load_guess_fn
    from bot.matchlog import MatchLog, model_info
    from bot.play import ArenaGame, play_arena

    tmp = Path(tempfile.mkdtemp(prefix="bench-bot-"))
    demo_run, demo_world = ROOT / "checkpoints" / "demo", ROOT / "checkpoints" / "demo" / "holdout"
    run = args.run or (demo_run if (demo_run / "manifest.json").is_file() else None)
    model_kind = (args.label or "given") if args.run else ("demo" if run else "tiny (checkpoints/demo missing)")
    t0 = time.perf_counter()
    run = run or tiny_run(tmp)
    from model.text.cue import TextCueConfig

    text_cue = None if args.no_text_cue else TextCueConfig()
    plain_guess, predictor = load_guess_fn(run, "cpu", text_cue=text_cue)
    capture_sizes, text_ms, reads = Counter(), [], Counter()

    def guess(views, **kw):  # records what the bot captured and what the text cue cost
        from PIL import Image
        import io

        capture_sizes.update(str(Image.open(io.BytesIO(v)).size) for v in views)
        g = plain_guess(views, **kw)
        if "text_ms" in g.timings_ms:
            text_ms.append(g.timings_ms["text_ms"])
            reads["snapped" if g.text and g.text["snapped"] else "read" if g.text and g.text["reads"] else "none"] += 1
        return g

    load_s = time.perf_counter() - t0
    world = args.world or (demo_world if (demo_world / "manifest.json").is_file() else
                           make_demo_world(tmp / "world", n_locations=12))
    cfg = BotConfig(play=PlayConfig(screenshots_dir=str(tmp / "shots"), max_attempts=3))
    srv = make_server(world, tmp / "arena.sqlite", split="test")
    records, failures, games = [], [], 0
    t_start = time.perf_counter()
    try:
        with MatchLog(tmp / "matchlog.sqlite") as ml, open_browser(cfg.browser) as browser:
            left = args.rounds
            while left > 0:
                n = min(args.game_rounds, left, len(srv.service.worlds[next(iter(srv.service.worlds))].pool))
                try:
                    rep = play_arena(browser, srv.url, guess, cfg, ArenaGame("classic", n), matchlog=ml,
                                     model=model_info(run))
                    records += rep.rounds
                except BotError as e:
                    failures.append(str(e))
                games += 1
                left -= n
                print(f"{args.rounds - left}/{args.rounds} rounds, {len(failures)} failures", flush=True)
        with srv.db.read() as c:
            max_guesses = c.execute("SELECT MAX(k) FROM (SELECT COUNT(*) AS k FROM guesses GROUP BY game_id, n, "
                                    "player_id)").fetchone()[0]
    finally:
        srv.stop()
    wall_s = time.perf_counter() - t_start
    played = [r for r in records if r.placed is not None]
    totals = [r.total_ms for r in played]
    write("bot", {
        "model": {"kind": model_kind, "run": str(run), "backbone": predictor.info.backbone,
                  "image_size": predictor.info.image_size, "num_cells": predictor.info.num_cells,
                  "load_s": round(load_s, 2)},
        "world": str(world), "viewport": [cfg.browser.viewport_width, cfg.browser.viewport_height],
        "rounds_requested": args.rounds, "games": games, "rounds_played": len(played),
        "rounds_with_result": sum(r.result is not None for r in records),
        "failures": failures, "retried_rounds": sum(r.attempts > 1 for r in records),
        "guess_methods": dict(Counter(r.placed.method for r in played)),
        "max_guesses_per_round_in_db": max_guesses,
        "round_ms": {"median": round(statistics.median(totals), 1), "p90": round(pct(totals, 0.9), 1),
                     "max": round(max(totals), 1)} if totals else None,
        "phase_ms_median": {k: round(statistics.median(getattr(r, k) for r in played), 1)
                            for k in ("capture_ms", "infer_ms", "guess_ms")} if played else None,
        "result_ms_median": round(statistics.median(r.result_ms for r in played if r.result_ms is not None), 1)
        if played else None,
        "wall_s": round(wall_s, 1), "wall_s_per_round": round(wall_s / max(1, len(played)), 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "capture_sizes": dict(capture_sizes),
        "text_cue": ({"enabled": True, "text_ms_median": round(statistics.median(text_ms), 1) if text_ms else None,
                      "rounds": dict(reads)} if text_cue is not None else {"enabled": False}),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "note": "round_ms = capture (4 PNG headings, UI hidden) + inference + guess placement (map click + submit); "
                "wall time also includes reading results, next-round navigation and new games",
    })
    if failures or len(played) != args.rounds or (max_guesses or 0) > 1:
        raise SystemExit(f"soak failed: {len(played)}/{args.rounds} rounds, {len(failures)} failures, "
                         f"max guesses per round {max_guesses}")


if __name__ == "__main__":
    main()
