"""``pigeon tournament``: series of bot-vs-bot duels in the arena between several runs and/or guess modes,
several duels at once, each seat a real bot client in its own browser; a report with win rates, score
differences (95 % intervals) and a rating table."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pigeon.cli._bot import add_bot_options, arena_url, bot_config, load_seat, matchlog_path

GUESS_MODES = ("expected_score", "refined", "head")


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tournament", help="bot-vs-bot duels between runs and/or guess modes, with a report",
                       description="Every entrant is RUN[:MODE] (MODE one of expected_score, refined, head; default "
                                   "[play] guess_mode). Each pair of entrants plays --duels duels (round-robin), "
                                   "--parallel at once. Two entrants of the same run and mode guess alike and "
                                   "only draw: pair different runs or modes.")
    t.add_argument("--entrant", "-e", action="append", default=[], metavar="RUN[:MODE]", required=True,
                   help="a competitor, e.g. checkpoints/demo:head (repeat; at least two)")
    t.add_argument("--duels", type=int, default=10, help="duels per pair of entrants (default 10)")
    t.add_argument("--parallel", type=int, default=2, help="duels played at once (default 2)")
    t.add_argument("--out", type=Path, default=None,
                   help="report folder (default runs/tournament/<UTC time>): report.json and report.md")
    t.add_argument("--url", default=None, help="a running arena (default: start one on loopback)")
    t.add_argument("--world", type=Path, default=None, help="dataset folder for the arena started here "
                                                             "(default [demo] world)")
    add_bot_options(t)
    t.set_defaults(func=run_tournament_cli)


def parse_entrant(text: str) -> tuple[Path, str | None]:
    """``RUN[:MODE]`` -> (run folder, guess mode or None); ValueError naming the modes for a bad one."""
    run, sep, mode = text.rpartition(":")
    if not sep or "/" in mode:
        return Path(text), None
    if mode not in GUESS_MODES:
        raise ValueError(f"entrant {text!r}: unknown guess mode {mode!r} (one of {', '.join(GUESS_MODES)})")
    if not run:
        raise ValueError(f"entrant {text!r}: no run folder before ':{mode}'")
    return Path(run), mode


def run_tournament_cli(args: argparse.Namespace) -> int:
    from bot.tournament import Entrant, run_tournament, summarise
    from model.paths import project_path

    cfg = bot_config(args, ['play.mode="duel"'])
    rounds = args.rounds or cfg.play.rounds
    specs = [parse_entrant(e) for e in args.entrant]
    entrants = []
    for run, mode in specs:
        seat = load_seat(run, cfg, mode)
        name = f"{Path(seat.model['run']).name}:{seat.model['guess_mode']}"
        if any(e.name == name for e in entrants):
            raise ValueError(f"entrant {name} given twice: the same run and guess mode only draws with itself")
        entrants.append(Entrant(name, seat.guess, seat.model))
    if len(entrants) < 2:
        raise ValueError("a tournament needs at least two entrants: --entrant RUN[:MODE] twice or more")
    out = args.out or project_path("runs/tournament") / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    ml = matchlog_path(cfg)
    done: list[Any] = []

    def progress(r: Any) -> None:
        done.append(r)
        verdict = r.error or (f"{r.winner} won" if r.winner not in (None, "draw") else "draw")
        print(f"[{len(done)}] {r.a} vs {r.b}: {sum(r.scores_a):,} : {sum(r.scores_b):,} "
              f"(HP {r.hp_a} : {r.hp_b}) {verdict}, {r.seconds:.0f} s", file=sys.stderr, flush=True)

    with arena_url(args, cfg) as url:
        results, wall = run_tournament(url, entrants, cfg, rounds=rounds, duels_per_pair=args.duels,
                                       parallel=args.parallel, matchlog_path=ml, on_result=progress)
    report = summarise(results, entrants, wall, args.parallel, rounds_per_duel=rounds,
                       text_cue=bool(cfg.text_cue.enabled), matchlog=str(ml),
                       finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    print_summary(report)
    print(f"report: {out / 'report.json'}, {out / 'report.md'}; match log: {ml}")
    return 0 if report["finished"] else 1


def _ci(v: Any, lo: Any, hi: Any, fmt: str) -> str:
    if v is None:
        return "-"
    return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]" if lo is not None and hi is not None else f"{v:{fmt}}"


def tables(report: dict) -> tuple[list[list[str]], list[str], list[list[str]], list[str]]:
    """(pairing rows, pairing columns, rating rows, rating columns) of a tournament report."""
    pcols = ["player", "opponent", "duels", "W-D-L", "win rate [95% CI]", "mean score", "opp. mean score",
             "score diff / round [95% CI]"]
    prow = [[p["player"], p["opponent"], str(p["duels"]) + (f" ({p['failed']} failed)" if p["failed"] else ""),
             f"{p['wins']}-{p['draws']}-{p['losses']}", _ci(p["win_rate"], *p["win_rate_ci95"], ".2f"),
             f"{p['mean_score']:,.0f}" if p["mean_score"] is not None else "-",
             f"{p['opponent_mean_score']:,.0f}" if p["opponent_mean_score"] is not None else "-",
             _ci(p["mean_score_diff"], *p["mean_score_diff_ci95"], "+,.0f")] for p in report["pairings"]]
    rcols = ["entrant", "mu", "sigma", "mu 95% interval", "ordinal (mu-3σ)", "duels", "W-D-L"]
    rrow = [[r["entrant"], f"{r['mu']:.2f}", f"{r['sigma']:.2f}", f"{r['mu_ci95'][0]:.2f} .. {r['mu_ci95'][1]:.2f}",
             f"{r['ordinal']:.2f}", str(r["duels"]), f"{r['wins']}-{r['draws']}-{r['losses']}"]
            for r in report["ratings"]]
    return prow, pcols, rrow, rcols


def _headline(report: dict) -> str:
    dph = report["duels_per_hour"]
    return (f"{report['finished']} of {report['duels']} duels finished ({report['draws']} draws), "
            f"{report['rounds_per_duel']} rounds each, {report['parallel']} at once, in {report['wall_s']:,.0f} s: "
            f"{dph:,.1f} duels per hour" if dph else f"{report['duels']} duels, none finished") + \
        f"; text cue {'on' if report['text_cue'] else 'off'}"


def print_summary(report: dict) -> None:
    from rich.console import Console

    from pigeon.cli._render import print_table

    con = Console()
    prow, pcols, rrow, rcols = tables(report)
    con.print(_headline(report))
    print_table(prow, pcols, title="pairings (player's view; draws count 1/2)", right=set(pcols) - {"player", "opponent"},
                console=con)
    print_table(rrow, rcols, title="ratings (openskill Plackett-Luce)", right=set(rcols) - {"entrant"}, console=con)


def markdown(report: dict) -> str:
    """The report as Markdown tables (docs quote it)."""
    prow, pcols, rrow, rcols = tables(report)

    def md(rows: list[list[str]], cols: list[str]) -> str:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])

    return (f"# Tournament {report['finished_utc']}\n\n{_headline(report)}.\n\n## Pairings\n\n{md(prow, pcols)}\n\n"
            f"## Ratings\n\n{md(rrow, rcols)}\n")
