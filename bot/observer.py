"""Watching a game while it is played: a match log that also tells an observer.

The controller reports every guess, result and event to its ``matchlog`` (``bot.matchlog.MatchLog``); an
``ObservedLog`` passes each call on to the real log (or to none) and then to an observer, e.g. the live
terminal view of ``pigeon play`` or the progress of ``pigeon tournament``. The observer only sees what the log
sees, after the fact: it cannot change the game, and a failing observer never stops it (the error is logged).
"""
from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)


class GameObserver(Protocol):
    """What an observer may implement (every method optional): the controller's match-log calls."""

    def on_start(self, site: str, mode: str, game_id: str, model: dict[str, Any]) -> None: ...

    def on_guess(self, rec: Any) -> None: ...          # a ``RoundRecord`` whose guess was just placed

    def on_round(self, rec: Any) -> None: ...          # a ``RoundRecord`` whose result was just read

    def on_event(self, round_n: int | None, kind: str, detail: str) -> None: ...

    def on_finish(self, summary: Any, status: str) -> None: ...


class ObservedLog:
    """Drop-in for ``MatchLog`` in ``Controller(matchlog=...)``: forwards to ``inner`` (may be None) and to
    ``observer``. Match ids come from ``inner``; without one the ids are 0 (the controller only passes them
    back)."""

    def __init__(self, inner: Any, observer: Any) -> None:
        self.inner, self.observer = inner, observer

    def _tell(self, name: str, *args: Any) -> None:
        fn = getattr(self.observer, name, None)
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a view must never stop a game
            log.warning("game observer %s failed: %s", name, e)

    def start_match(self, site: str, mode: str, game_id: str, model: dict[str, Any]) -> int:
        mid = self.inner.start_match(site, mode, game_id, model) if self.inner is not None else 0
        self._tell("on_start", site, mode, game_id, model)
        return mid

    def log_guess(self, match_id: int | None, rec: Any) -> None:
        if self.inner is not None:
            self.inner.log_guess(match_id, rec)
        self._tell("on_guess", rec)

    def log_round(self, match_id: int | None, rec: Any) -> None:
        if self.inner is not None:
            self.inner.log_round(match_id, rec)
        self._tell("on_round", rec)

    def log_event(self, match_id: int | None, round_n: int | None, kind: str, detail: str) -> None:
        if self.inner is not None:
            self.inner.log_event(match_id, round_n, kind, detail)
        self._tell("on_event", round_n, kind, detail)

    def finish_match(self, match_id: int | None, summary: Any, status: str) -> None:
        if self.inner is not None:
            self.inner.finish_match(match_id, summary, status)
        self._tell("on_finish", summary, status)
