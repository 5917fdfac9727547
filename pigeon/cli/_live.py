"""The live terminal view of ``pigeon play`` and ``pigeon duel``: one panel per bot seat with the round being
played (views captured, the most probable countries, the guess, the signs read, then distance, score and HP),
the last rounds underneath, and a progress line for the game.

The view is fed by ``bot.observer.ObservedLog`` (the controller's match-log calls), so it shows only what the
bot did and what the site reported after the guess was locked. It is drawn with ``rich.live.Live`` and only when
stdout is a terminal (``live_enabled``); ``--quiet`` turns it off, and the final round table is printed either way.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pigeon.cli._bot import signs_read

CountryFn = Callable[[Sequence[Sequence[float]]], list[tuple[str, float]]]
RECENT_ROUNDS = 5


def live_enabled(quiet: bool, stream: Any = None) -> bool:
    """The live view is drawn only on a terminal and without ``--quiet``."""
    import sys

    stream = stream or sys.stdout
    return not quiet and bool(getattr(stream, "isatty", lambda: False)())


def country_lookup(centroids_deg: Any, cell_country: Sequence[str]) -> CountryFn:
    """heat [[lat, lon, p], ...] (the geocell centroids a ``GuessResult`` carries) -> [(country, p)] summed by
    the cells' countries, most probable first; ``''`` = cells without a country. Cells under the heat map's
    threshold (p < 1e-3) are not in the heat map, so the totals can sum to slightly less than 1."""
    table = {(float(lat), float(lon)): (cc or "") for (lat, lon), cc in zip(centroids_deg, cell_country)}

    def countries(heat: Sequence[Sequence[float]]) -> list[tuple[str, float]]:
        totals: dict[str, float] = {}
        for lat, lon, p in heat:
            cc = table.get((float(lat), float(lon)), "?")
            totals[cc] = totals.get(cc, 0.0) + float(p)
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))

    return countries


@dataclass
class SeatState:
    """What one seat's panel shows; updated from the observer thread, read by the drawing thread."""

    label: str
    rounds_total: int | None = None
    game_id: str = ""
    round_n: int | None = None
    views: str = "-"
    countries: str = "-"
    guess: str = "-"
    signs: str = "-"
    result: str = "waiting for the round"
    total: int = 0
    hp: str | None = None
    status: str = "starting"
    done: list[tuple[int, str, str, str, str]] = field(default_factory=list)  # round, km, score, HP, guess


class SeatObserver:
    """The ``GameObserver`` of one seat (``bot.observer``): turns records into the seat's ``SeatState``."""

    def __init__(self, view: LiveView, state: SeatState, countries: CountryFn | None = None) -> None:
        self.view, self.state, self.countries = view, state, countries

    def on_start(self, site: str, mode: str, game_id: str, model: dict[str, Any]) -> None:
        with self.view.lock:
            self.state.game_id, self.state.status = game_id, f"{site} {mode} {game_id}"
        self.view.refresh()

    def on_guess(self, rec: Any) -> None:
        g, s = rec.guess, self.state
        with self.view.lock:
            s.round_n = rec.round_n
            s.rounds_total = rec.state.rounds_total or s.rounds_total
            s.views = f"{rec.views_captured} captured in {rec.capture_ms / 1e3:.1f} s, inferred in " \
                      f"{rec.infer_ms / 1e3:.1f} s"
            s.countries = country_text(self.countries, g.heat) if g is not None else "-"
            es = f"  (expected score {g.expected_score:,.0f})" if g is not None and g.expected_score else ""
            s.guess = f"{g.lat_deg:.2f}, {g.lon_deg:.2f}{es}" if g is not None else "no guess"
            s.signs = signs_read(getattr(g, "text", None), width=60) if g is not None else "-"
            s.result = "guess locked, waiting for the result"
        self.view.refresh()

    def on_round(self, rec: Any) -> None:
        res, s = rec.result, self.state
        if res is None:
            return
        with self.view.lock:
            km = f"{res.dist_km:,.1f} km" if res.dist_km is not None else "no guess"
            pts = f"{res.score:,}" if res.score is not None else "-"
            truth = f" (truth {res.truth_country})" if res.truth_country else ""
            dmg = f", damage {res.damage:,}" if res.damage else ""
            s.hp = f"{res.hp_own:,} : {res.hp_opponent:,}" if res.hp_own is not None and res.hp_opponent is not None \
                else s.hp
            s.result = f"{km}{truth}, {pts} points" + (f", HP {s.hp}{dmg}" if s.hp else "")
            s.total += res.score or 0
            g = rec.guess
            s.done.append((rec.round_n, km, pts, s.hp or "",
                           f"{g.lat_deg:.2f}, {g.lon_deg:.2f}" if g is not None else "-"))
        self.view.refresh()

    def on_event(self, round_n: int | None, kind: str, detail: str) -> None:
        if kind in ("error", "fatal", "recover", "skipped", "clock"):
            with self.view.lock:
                self.state.status = f"{kind}: {detail[:80]}"
            self.view.refresh()

    def on_finish(self, summary: Any, status: str) -> None:
        with self.view.lock:
            if summary is not None and summary.hp_own is not None:
                verdict = "draw" if summary.draw else "won" if summary.won else "lost"
                self.state.status = f"{verdict} {summary.hp_own:,} : {summary.hp_opponent:,}"
            else:
                self.state.status = status
        self.view.refresh()


class LiveView:
    """Panels for one or more seats plus a progress line, drawn with ``rich.live.Live`` while the game runs.

    Usage: ``with LiveView(console, "arena duel", rounds) as view: obs = view.seat("bot A")`` and hand
    ``ObservedLog(matchlog, obs)`` to the controller. ``renderable()`` is the current picture (for captures).
    """

    def __init__(self, console: Any, title: str, rounds_total: int | None, countries: CountryFn | None = None,
                 enabled: bool = True) -> None:
        self.console, self.title, self.rounds_total = console, title, rounds_total
        self.countries, self.enabled = countries, enabled
        self.lock = threading.RLock()
        self.seats: list[SeatState] = []
        self.t0 = time.monotonic()
        self._live: Any = None

    def seat(self, label: str, countries: CountryFn | None = None) -> SeatObserver:
        """A new seat panel and the observer that feeds it (``countries``: this seat's run's lookup)."""
        st = SeatState(label, rounds_total=self.rounds_total)
        with self.lock:
            self.seats.append(st)
        return SeatObserver(self, st, countries or self.countries)

    def __enter__(self) -> LiveView:
        if self.enabled:
            from rich.live import Live

            import logging
            import sys

            # log lines (progress, warnings) go above the view instead of through it: point the root logger's
            # stderr handlers at the stderr that Live redirects while the view is drawn
            self._handlers = [(h, h.stream) for h in logging.getLogger().handlers
                              if isinstance(h, logging.StreamHandler) and h.stream in (sys.__stderr__, sys.stderr)]
            self._live = Live(get_renderable=self.renderable, console=self.console, refresh_per_second=4,
                              transient=False, redirect_stdout=True, redirect_stderr=True)
            self._live.__enter__()
            for h, _ in self._handlers:
                h.setStream(sys.stderr)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            for h, stream in getattr(self, "_handlers", []):
                h.setStream(stream)
            self._live.update(self.renderable(), refresh=True)
            self._live.__exit__(*exc)
            self._live = None

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    # ---- drawing ----------------------------------------------------------------------------------------------
    def renderable(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        with self.lock:
            seats = [_panel(s) for s in self.seats]
            line = self._progress()
        row = Table.grid(expand=True, padding=(0, 1))
        for _ in seats:
            row.add_column(ratio=1)
        if seats:
            row.add_row(*seats)
        return Group(row, line)

    def _progress(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        total = self.rounds_total or max((s.rounds_total or 0 for s in self.seats), default=0) or None
        done = max((len(s.done) for s in self.seats), default=0)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(width=30)
        grid.add_column(no_wrap=True)
        scores = "  ".join(f"{s.label} {s.total:,}" + (f" (HP {s.hp})" if s.hp else "") for s in self.seats)
        grid.add_row(f"[bold]{self.title}[/]  round {min(done + 1, total or done + 1)}/{total or '?'}",
                     ProgressBar(total=float(total or max(done, 1)), completed=float(done), width=30),
                     f"{scores}  {time.monotonic() - self.t0:,.0f} s")
        return grid


def country_text(countries: CountryFn | None, heat: Sequence[Sequence[float]], n: int = 4) -> str:
    """"IT 31%  FR 22%  ..." from a heat map, or "-" without a lookup or a heat map."""
    if countries is None or not heat:
        return "-"
    return "  ".join(f"{c or 'no country'} {100 * p:.0f}%" for c, p in countries(heat)[:n])


def _panel(s: SeatState) -> Any:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    rn = f"{s.round_n}/{s.rounds_total or '?'}" if s.round_n is not None else "-"
    for k, v in (("round", rn), ("views", s.views), ("countries", s.countries), ("guess", s.guess),
                 ("signs read", s.signs), ("result", s.result)):
        t.add_row(k, escape(v))
    recent = Table(show_header=True, header_style="dim", box=None, padding=(0, 1))
    for c in ("round", "guess", "km", "score") + (("HP",) if s.hp else ()):
        recent.add_column(c, justify="left" if c == "guess" else "right")
    for n, km, pts, hp, g in s.done[-RECENT_ROUNDS:]:
        recent.add_row(str(n), g, km.replace(" km", ""), pts, *((hp,) if s.hp else ()))
    from rich.console import Group

    body = Group(t, recent) if s.done else t
    return Panel(body, title=f"[bold]{escape(s.label)}[/]", subtitle=escape(s.status), subtitle_align="left")
