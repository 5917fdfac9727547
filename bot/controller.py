"""The game loop as a state machine: observe -> decide -> act, with neither Playwright nor torch in sight.

``decide(state, memory)`` is pure: it maps an observed ``RoundState`` and what the bot already did to the next
``Action``. ``Controller`` runs the loop against any ``Site`` and a ``guess(views) -> GuessResult`` callable:
wait for a round, optionally wait like a human (skipped when the round clock runs low), capture the headings,
infer, lock and place the guess, read the result, log, move on.

Robustness rules:
* never guess twice in a round: a round is recorded as locked *before* its guess is sent, and a locked round is
  only unlocked when, after an error, a fresh observation says the guess did not land;
* after any error the state is observed again (reloading the page if even that fails) before a retry; while the
  site stays unreachable the reload is retried with backoff (0.5 s doubling up to ``backoff_max_s``) for up to
  ``stall_timeout_s``, and the game resumes in the round it was in;
* with a round clock the bot captures only as many headings as fit before ``guess_margin_s`` is left (measured
  capture and inference times), so the guess goes in before time runs out;
* ``max_attempts`` failures of one step, or no progress for ``stall_timeout_s``, end the game with a
  ``BotError`` that names the step and the screenshot saved under ``runs/bot/screenshots``; a site that offers
  ``abandon()`` (the arena) is told the bot gave up its seat, so no game is left running.
"""
from __future__ import annotations

import dataclasses

import enum
import inspect
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import PlayConfig
from bot.sites.base import (GameSummary, GuessResult, Phase, PlacedGuess, RoundResult, RoundState, Site,
                            WatchOnly)

log = logging.getLogger(__name__)
GuessFn = Callable[[Sequence[bytes]], GuessResult]


class BotError(RuntimeError):
    """The bot could not go on; ``screenshot`` is the page as it was (None if even that failed)."""

    def __init__(self, message: str, screenshot: Path | None = None) -> None:
        super().__init__(message + (f" (screenshot: {screenshot})" if screenshot else ""))
        self.screenshot = screenshot


class Action(str, enum.Enum):
    WAIT = "wait"
    GUESS = "guess"
    READ_RESULT = "read_result"
    NEXT = "next"
    DONE = "done"


@dataclass
class Memory:
    """What the bot has done in this game; ``decide`` reads it, the controller writes it."""

    locked: set[int] = field(default_factory=set)        # rounds whose guess was (possibly) sent
    results: dict[int, RoundResult] = field(default_factory=dict)
    nexted: set[int] = field(default_factory=set)        # result screens left
    attempts: Counter = field(default_factory=Counter)   # (action, round) -> tries


def decide(state: RoundState, mem: Memory) -> tuple[Action, int | None]:
    """The next action for an observed state, and the round it concerns (pure).

    A locked earlier round whose result was never read (the site moved on by itself: a duel's next round, a page
    reloaded after an API guess) is read first, so every played round gets its truth and score logged.
    """
    n = state.round_n
    unread = sorted(r for r in mem.locked if r not in mem.results and (n is None or r < n))
    if unread:
        return Action.READ_RESULT, unread[0]
    if state.phase is Phase.FINISHED:
        return (Action.READ_RESULT, n) if n is not None and n not in mem.results else (Action.DONE, n)
    if state.phase is Phase.GUESSING:
        return (Action.WAIT if n in mem.locked else Action.GUESS), n   # the page may lag behind our guess
    if state.phase is Phase.RESULT:
        if n not in mem.results:
            return Action.READ_RESULT, n
        return (Action.NEXT if n not in mem.nexted else Action.WAIT), n
    return Action.WAIT, n                                            # WAITING, GUESSED


@dataclass
class RoundRecord:
    """One round as the bot played it; timings in milliseconds, ``total_ms`` = capture + inference + guess."""

    round_n: int
    state: RoundState
    attempts: int = 0
    delay_ms: float = 0.0
    capture_ms: float = 0.0
    infer_ms: float = 0.0
    guess_ms: float = 0.0
    result_ms: float | None = None
    guess: GuessResult | None = None
    views_captured: int = 0          # headings really captured (fewer than ``views`` in NMPZ or on a short clock)
    placed: PlacedGuess | None = None
    result: RoundResult | None = None
    errors: list[str] = field(default_factory=list)
    placed_at: float | None = field(default=None, repr=False)   # controller clock when the guess went in

    @property
    def total_ms(self) -> float:
        return self.capture_ms + self.infer_ms + self.guess_ms


@dataclass
class GameReport:
    game_id: str
    rounds: list[RoundRecord]
    summary: GameSummary | None
    match_id: int | None = None


class Controller:
    """Plays one game on ``site`` with ``guess``. ``matchlog`` (optional) gets every guess, round and event;
    ``clock``, ``sleep`` and ``rng`` are injectable so tests run without real time."""

    def __init__(self, site: Site, guess: GuessFn, cfg: PlayConfig | None = None, *, matchlog: Any = None,
                 model: dict[str, Any] | None = None, screenshot_dir: Path | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.site, self.guess, self.cfg = site, guess, cfg or PlayConfig()
        self.matchlog, self.model = matchlog, model or {}
        self.screenshot_dir = screenshot_dir or Path(self.cfg.screenshots_dir)
        self.clock, self.sleep, self.rng = clock, sleep, rng or random.Random()
        self.mem = Memory()
        self.records: dict[int, RoundRecord] = {}
        self.game_id, self.match_id = "", None
        self._view_s: list[float] = []    # measured capture time per heading
        self._guess_s: list[float] = []   # measured inference + placing time
        try:
            self._guess_takes_decay = "decay_km" in inspect.signature(guess).parameters
        except (TypeError, ValueError):
            self._guess_takes_decay = False

    # ---- the loop ------------------------------------------------------------------------------------------
    def play(self, mode: str, rounds: int) -> GameReport:
        """Open a game on the site and play it to the end."""
        self.game_id = self.site.open_game(mode, rounds)
        if self.matchlog is not None:
            self.match_id = self.matchlog.start_match(self.site.name, mode, self.game_id, self.model)
        try:
            summary = self._loop()
        except BaseException as e:
            if self.matchlog is not None:
                self.matchlog.finish_match(self.match_id, None, status=f"error: {type(e).__name__}: {e}"[:500])
            raise
        if self.matchlog is not None:
            self.matchlog.finish_match(self.match_id, summary, status="finished")
        return GameReport(self.game_id, [self.records[k] for k in sorted(self.records)], summary, self.match_id)

    def _loop(self) -> GameSummary:
        state = self._observe()
        last_key, last_progress = state.key, self.clock()
        while True:
            if state.key != last_key:
                last_key, last_progress = state.key, self.clock()
            elif self.clock() - last_progress > self.cfg.stall_timeout_s:
                raise self._fail(f"no progress for {self.cfg.stall_timeout_s:.0f} s in state "
                                 f"{state.phase.value} (round {state.round_n})")
            action, n = decide(state, self.mem)
            if action is Action.DONE:
                return self.site.summary()
            if action is Action.WAIT:
                if state.phase is Phase.GUESSED and state.round_n is not None:
                    self.mem.locked.add(state.round_n)  # e.g. found after a reload: never guess it again
                try:
                    state = self.site.wait_for_change(state, self.cfg.poll_s)
                except WatchOnly:
                    raise
                except Exception as e:  # noqa: BLE001 - e.g. the page navigated during the wait
                    self._event(state.round_n, "wait", f"wait failed ({_first_line(e)}); observing again")
                    state = self._observe()
                continue
            self._step(action, n, state)
            state = self._observe()

    def _step(self, action: Action, round_n: int | None, state: RoundState) -> None:
        n = round_n or 0
        key = (action.value, n)
        self.mem.attempts[key] += 1
        try:
            if action is Action.GUESS:
                self._guess_round(state)
            elif action is Action.READ_RESULT:
                self._read_result(n, state)
            elif action is Action.NEXT:
                self.site.next_round(n)
                self.mem.nexted.add(n)
        except WatchOnly:
            raise
        except Exception as e:  # noqa: BLE001 - every failure is re-observed, then retried or reported
            self._on_error(action, n, e)

    def _on_error(self, action: Action, n: int, exc: Exception) -> None:
        msg = f"{action.value} in round {n} failed: {type(exc).__name__}: {_first_line(exc)}"
        log.warning("%s; observing again", msg)
        self._event(n, "error", msg)
        if n in self.records:
            self.records[n].errors.append(msg)
        state = self._observe(recover_first=True)
        if action is Action.GUESS and n in self.mem.locked:
            if state.round_n == n and state.phase is Phase.GUESSING:
                self.mem.locked.discard(n)   # the site says the guess did not land: a retry is safe
                self._event(n, "unlocked", "guess did not land; will retry")
            else:
                self._event(n, "recovered", f"guess landed; state now {state.phase.value}")
        if self.mem.attempts[(action.value, n)] >= self.cfg.max_attempts and decide(state, self.mem) == (action, n):
            raise self._fail(f"{msg} ({self.cfg.max_attempts} attempts)") from exc

    # ---- steps ---------------------------------------------------------------------------------------------
    def _guess_round(self, state: RoundState) -> None:
        n = state.round_n
        assert n is not None
        rec = self.records.setdefault(n, RoundRecord(n, state))
        rec.attempts += 1
        rec.delay_ms = self._human_delay(state) * 1e3
        n_views = self._views_in_time(state, rec.delay_ms / 1e3)
        t0 = self.clock()
        views = self.site.capture_views(n, n_views)
        t1 = self.clock()
        rec.views_captured = len(views)
        views = pad_views(views, self.cfg.views) if self.cfg.pad_views else views
        # the map's own score decay, for a guess function that can use it (bot.guessing: docs/bot.md, "Scoring")
        guess = (self.guess(views, decay_km=state.decay_km) if self._guess_takes_decay and state.decay_km
                 else self.guess(views))
        t2 = self.clock()
        if rec.views_captured:
            self._view_s.append((t1 - t0) / rec.views_captured)
        rec.capture_ms, rec.infer_ms, rec.guess = (t1 - t0) * 1e3, (t2 - t1) * 1e3, guess
        now = self.site.observe()
        if now.round_n != n or now.phase is not Phase.GUESSING:
            self._event(n, "skipped", f"round moved on while inferring ({now.phase.value}, round {now.round_n})")
            return
        self.mem.locked.add(n)   # before anything is sent: a retry needs proof that this guess did not land
        try:
            rec.placed = self.site.place_guess(n, guess.lat_deg, guess.lon_deg)
        finally:
            rec.guess_ms = (self.clock() - t2) * 1e3
            self._guess_s.append((self.clock() - t1))
            self._log_guess(rec)
        rec.placed_at = self.clock()
        if self.cfg.post_predictions and (guess.topk or guess.heat):
            try:
                self.site.post_predictions(n, guess)
            except Exception as e:  # noqa: BLE001 - the overlay is optional; the game goes on
                self._event(n, "overlay", f"posting predictions failed: {_first_line(e)}")
        commit = getattr(self.site, "commit_guess", None)  # sites that pin first and lock after the belief
        if commit is not None:
            method = commit(n)
            if method is not None and rec.placed is not None and method != rec.placed.method:
                rec.placed = dataclasses.replace(rec.placed, method=method)

    def _views_in_time(self, state: RoundState, waited_s: float) -> int:
        """Headings to capture: ``views``, fewer when the round clock would not leave ``guess_margin_s`` after
        capturing (measured seconds per heading) and inferring + placing (measured); at least one."""
        want = self.cfg.views
        if state.time_left_s is None:
            return want
        per_view = max(self._view_s[-3:]) if self._view_s else self.cfg.est_view_s
        after = max(self._guess_s[-3:]) if self._guess_s else self.cfg.est_guess_s
        budget = state.time_left_s - waited_s - self.cfg.guess_margin_s - after
        fit = int(budget // per_view) if per_view > 0 else want
        if fit < want:
            self._event(state.round_n, "clock", f"{state.time_left_s:.0f} s left: {max(1, fit)} of {want} views")
        return max(1, min(want, fit))

    def _human_delay(self, state: RoundState) -> float:
        """Wait a random human-like time, in steps of ``poll_s`` that re-check the round clock; returns s."""
        lo, hi = self.cfg.human_delay_s
        if hi <= 0:
            return 0.0
        left = state.time_left_s
        if left is not None and left < self.cfg.fast_below_s:
            return 0.0
        budget = self.rng.uniform(lo, hi)
        if left is not None:
            budget = min(budget, left - self.cfg.fast_below_s)
        waited = 0.0
        while waited < budget:
            step = min(self.cfg.poll_s, budget - waited)
            self.sleep(step)
            waited += step
            now = self.site.observe()
            if now.round_n != state.round_n or now.phase is not Phase.GUESSING or (
                    now.time_left_s is not None and now.time_left_s < self.cfg.fast_below_s):
                break  # the opponent guessed (countdown started) or the round changed: act now
        return waited

    def _read_result(self, n: int, state: RoundState) -> None:
        result = self.site.read_result(n)
        self.mem.results[n] = result
        rec = self.records.setdefault(n, RoundRecord(n, state))
        rec.result = result
        if rec.placed_at is not None:
            rec.result_ms = (self.clock() - rec.placed_at) * 1e3
        if self.matchlog is not None:
            self.matchlog.log_round(self.match_id, rec)
        log.info("round %d: %s km, %s points", n, _fmt(result.dist_km), result.score)

    # ---- helpers -------------------------------------------------------------------------------------------
    def _observe(self, recover_first: bool = False) -> RoundState:
        """Observe; when that fails, reload and observe again, retrying with backoff (0.5 s doubling up to
        ``backoff_max_s``) while the site is unreachable, for up to ``stall_timeout_s`` (then fail)."""
        try:
            return self.site.observe()
        except WatchOnly:
            raise   # nothing to recover: the bot never acts where it cannot play
        except Exception as first:  # noqa: BLE001
            self._event(None, "recover", f"observe failed ({_first_line(first)}); reloading")
        t0, delay, tries = self.clock(), 0.5, 0
        while True:
            tries += 1
            try:
                self.site.recover()
                state = self.site.observe()
                if tries > 1:
                    self._event(state.round_n, "recovered", f"site back after {self.clock() - t0:.1f} s, "
                                f"{tries} reloads; resuming round {state.round_n}")
                return state
            except WatchOnly:
                raise
            except Exception as e:  # noqa: BLE001 - unreachable, or a page that is not back yet
                last = e
            if self.clock() - t0 + delay > self.cfg.stall_timeout_s:
                raise self._fail(f"the site stayed unreachable for {self.clock() - t0:.0f} s ({tries} reloads): "
                                 f"{_first_line(last)}") from last
            self.sleep(delay)
            delay = min(delay * 2, self.cfg.backoff_max_s)

    def _fail(self, message: str) -> BotError:
        """The error that ends the game: a screenshot, and the seat given up where the site can (``abandon``)."""
        message += self._abandon()
        shot = None
        try:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = self.screenshot_dir / f"{self.site.name}-{self.game_id or 'nogame'}-{stamp}.png"
            shot = self.site.screenshot(path)
        except Exception as e:  # noqa: BLE001 - the error itself matters more than its picture
            log.warning("screenshot failed: %s", _first_line(e))
        self._event(None, "fatal", message)
        return BotError(message, shot)

    def _abandon(self) -> str:
        abandon = getattr(self.site, "abandon", None)
        if abandon is None:
            return ""
        try:
            abandon()
        except Exception as e:  # noqa: BLE001 - the site may be the very thing that is down
            return f"; the game could not be abandoned: {_first_line(e)}"
        return "; game abandoned"

    def _event(self, round_n: int | None, kind: str, detail: str) -> None:
        if self.matchlog is not None and self.match_id is not None:
            self.matchlog.log_event(self.match_id, round_n, kind, detail)

    def _log_guess(self, rec: RoundRecord) -> None:
        if self.matchlog is not None and rec.guess is not None:
            self.matchlog.log_guess(self.match_id, rec)


def pad_views(views: Sequence[bytes], want: int) -> list[bytes]:
    """``want`` inputs from fewer captured headings, each repeated in heading order ([a] -> [a, a, a, a];
    [a, c] -> [a, a, c, c]): a run that fuses a fixed number of views still gets them (docs/bot.md, "Rules")."""
    views = list(views)
    if not views or len(views) >= want:
        return views
    return [views[i * len(views) // want] for i in range(want)]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"
