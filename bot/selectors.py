"""Selector registry with ordered fallbacks (docs/bot.md, "Live site"): one name -> several selectors, best
first.

Stable hooks come first (``[data-qa=...]``), then class prefixes (``[class*="guess-map_canvas__"]``, which survive
the hashed CSS-module suffixes of each deploy), then text. ``find`` waits (bounded) for any of them and returns
the first that matches, so a renamed hook degrades to a fallback instead of a failure; ``check`` is the startup
self-test that names every entry the page no longer has.
"""
from __future__ import annotations

import functools
import logging
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SelectorError(LookupError):
    """No selector of a registry entry matched within the wait."""


@dataclass(frozen=True)
class SelectorRegistry:
    """``entries``: name -> ordered selectors. ``required``: names the ``--check`` self-test insists on."""

    entries: dict[str, tuple[str, ...]]
    required: tuple[str, ...] = ()
    source: str = "<code>"

    def __post_init__(self) -> None:
        empty = [k for k, v in self.entries.items() if not v]
        if empty:
            raise ValueError(f"{self.source}: selector entries without selectors: {', '.join(empty)}")
        unknown = [k for k in self.required if k not in self.entries]
        if unknown:
            raise ValueError(f"{self.source}: required entries not defined: {', '.join(unknown)}")

    def candidates(self, name: str) -> tuple[str, ...]:
        try:
            return self.entries[name]
        except KeyError:
            raise KeyError(f"no selector entry {name!r} in {self.source}; known: {', '.join(self.entries)}") from None

    def find(self, page: Any, name: str, timeout_ms: float, state: str = "visible") -> tuple[Any, str]:
        """Wait up to ``timeout_ms`` for any candidate of ``name``; returns (first matching locator, selector)."""
        from playwright.sync_api import Error as PlaywrightError

        cands = self.candidates(name)
        union = functools.reduce(lambda a, b: a.or_(b), (page.locator(c) for c in cands))
        try:
            union.first.wait_for(state=state, timeout=timeout_ms)
        except PlaywrightError as e:
            raise SelectorError(f"selector {name!r} not found within {timeout_ms / 1000:.1f} s "
                                f"(tried {', '.join(cands)}; source {self.source})") from e
        for i, c in enumerate(cands):
            loc = page.locator(c)
            if loc.count() and (state != "visible" or loc.first.is_visible()):
                if i:
                    log.info("selector %r: fell back to %r (earlier candidates missing)", name, c)
                return loc.first, c
        raise SelectorError(f"selector {name!r}: matched, then vanished (tried {', '.join(cands)})")

    def present(self, page: Any, name: str) -> str | None:
        """The first candidate of ``name`` present right now (no waiting), or None."""
        for c in self.candidates(name):
            if page.locator(c).count():
                return c
        return None

    def check(self, page: Any, names: Iterable[str] | None = None) -> dict[str, str | None]:
        """The self-test: for each entry (default ``required``) the candidate that matches now, or None."""
        return {n: self.present(page, n) for n in (names if names is not None else self.required)}


def load_registry(path: str | Path) -> tuple[SelectorRegistry, dict[str, Any]]:
    """A registry from a TOML file with a ``[selectors]`` table (name = [selectors...]) and ``required``;
    returns it with the file's other tables (site settings such as the fair-play URL pattern)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"selector file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    sel = data.pop("selectors", None)
    if not isinstance(sel, dict) or not all(isinstance(v, list) and all(isinstance(s, str) for s in v)
                                            for v in sel.values()):
        raise ValueError(f"{path}: [selectors] must map names to lists of selector strings")
    required = data.pop("required", [])
    return SelectorRegistry({k: tuple(v) for k, v in sel.items()}, tuple(required), str(path)), data
