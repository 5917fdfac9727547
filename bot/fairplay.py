"""Fair play, enforced in code: the bot never sees a round's location before its guess for that round is locked.

Game-state JSON (GeoGuessr classic ``rounds[]``, duels ``rounds[].panorama``, the ``__NEXT_DATA__`` snapshot in
the HTML) carries the true coordinates and pano id of the *current* round; cheat scripts read exactly that
(docs/bot.md, "Fair play"). Two layers keep the bot honest:

* ``ResponseFilter`` sits between the network and the page (a Playwright ``context.route``): it fetches the real
  response and strips location fields (lat/lng/lon, country, town, location ids) from game-state JSON and from
  the HTML's ``__NEXT_DATA__`` until the round is locked. Rounds inside a ``rounds`` list are judged by their
  own number, so a response that already holds the *next* round keeps that round hidden after the lock. Pano
  ids are swapped for random aliases, and requests that carry an alias (Street View tiles) are rewritten back
  to the real id on their way out, so the page still loads the panorama while neither page nor bot ever holds
  the real id.
* ``TruthGuard`` refuses any read of a round's result before the adapter locked that round.

``FairPlay`` ties both to one ``lock(round_n)`` call made just before a guess is sent.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

LOCATION_KEYS = frozenset({
    "lat", "lng", "lon", "latitude", "longitude", "country", "countrycode", "country_code", "town",
    "streaklocationcode", "location_id", "locationid", "truth", "address", "panoid", "pano_id",
})
PANO_KEYS = frozenset({"panoid", "pano_id"})
NEXT_DATA_RE = re.compile(r'(<script[^>]*id="__NEXT_DATA__"[^>]*>)(.*?)(</script>)', re.DOTALL | re.IGNORECASE)
_ALNUM = string.ascii_letters + string.digits


class FairPlayError(RuntimeError):
    """The bot tried to read a round's location (or its result) before locking its guess."""


class PanoAliases:
    """Real pano id <-> random alias of the same length (hex-encoded ids get hex-encoded aliases)."""

    def __init__(self) -> None:
        self._alias_of: dict[str, str] = {}
        self._real_of: dict[str, str] = {}

    def alias(self, real: str) -> str:
        if real in self._alias_of:
            return self._alias_of[real]
        plain = _hex_ascii(real)
        if plain is not None:  # GeoGuessr sends pano ids hex-encoded; the page decodes them before use
            alias_plain = "".join(secrets.choice(_ALNUM) for _ in plain)
            alias = alias_plain.encode().hex()
            alias = alias.upper() if real.isupper() else alias
            self._real_of[alias_plain] = plain
        else:
            alias = "".join(secrets.choice(_ALNUM) for _ in real)
        self._alias_of[real], self._real_of[alias] = alias, real
        return alias

    def rewrite(self, text: str) -> str:
        """``text`` (a request URL) with every alias replaced by its real id."""
        for alias, real in self._real_of.items():
            if alias in text:
                text = text.replace(alias, real)
        return text

    def matches(self, text: str) -> bool:
        return any(a in text for a in self._real_of)


def _hex_ascii(s: str) -> str | None:
    if len(s) < 8 or len(s) % 2 or not all(c in string.hexdigits for c in s):
        return None
    try:
        plain = bytes.fromhex(s).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return plain if plain.isprintable() else None


@dataclass
class ScrubState:
    """``cleared_through``: highest round whose guess is locked; ``current_locked``: whether the round being
    played now is locked (False from ``arm()`` until the next ``lock``)."""

    cleared_through: int = 0
    current_locked: bool = False


def scrub(obj: Any, state: ScrubState, aliases: PanoAliases | None = None,
          keep_under: Iterable[str] = ("bounds",)) -> tuple[Any, int]:
    """A copy of JSON data with hidden location fields removed; returns (copy, number of fields stripped).

    Entries of a ``rounds`` list are hidden while their round number (``roundNumber``, ``n`` or position) is
    above ``cleared_through``; everything outside such lists while ``current_locked`` is False. Subtrees under
    ``keep_under`` keys (map bounds, which the guess map needs) are kept.
    """
    keep = frozenset(k.lower() for k in keep_under)
    count = [0]

    def walk(node: Any, hidden: bool) -> Any:
        if isinstance(node, list):
            return [walk(x, hidden) for x in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for k, v in node.items():
            kl = k.lower()
            if kl in keep:
                out[k] = v
            elif hidden and kl in LOCATION_KEYS:
                count[0] += 1
                if kl in PANO_KEYS and isinstance(v, str) and aliases is not None:
                    out[k] = aliases.alias(v)
            elif kl == "rounds" and isinstance(v, list):
                out[k] = [walk(item, _round_number(item, i) > state.cleared_through) for i, item in enumerate(v)]
            else:
                out[k] = walk(v, hidden)
        return out

    return walk(obj, not state.current_locked), count[0]


def _round_number(item: Any, index: int) -> int:
    if isinstance(item, dict):
        for key in ("roundNumber", "n", "round"):
            v = item.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                return v
    return index + 1


def scrub_body(body: bytes, content_type: str, state: ScrubState, aliases: PanoAliases | None = None,
               keep_under: Iterable[str] = ("bounds",)) -> tuple[bytes, int]:
    """Scrub a JSON body, or the ``__NEXT_DATA__`` script of an HTML page; other bodies pass unchanged."""
    ct = content_type.lower()
    if "json" in ct:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return body, 0
        clean, n = scrub(data, state, aliases, keep_under)
        return (json.dumps(clean, separators=(",", ":")).encode() if n else body), n
    if "html" in ct:
        text = body.decode("utf-8", errors="replace")
        total = 0

        def repl(m: re.Match) -> str:
            nonlocal total
            try:
                data = json.loads(m.group(2))
            except ValueError:
                return m.group(0)
            clean, n = scrub(data, state, aliases, keep_under)
            total += n
            return m.group(1) + json.dumps(clean).replace("</", "<\\/") + m.group(3)

        new = NEXT_DATA_RE.sub(repl, text)
        return (new.encode("utf-8") if total else body), total
    return body, 0


class TruthGuard:
    """Remembers which rounds are locked; ``require_locked`` raises before any read of an unlocked round."""

    def __init__(self) -> None:
        self._locked: set[int] = set()

    def lock(self, round_n: int) -> None:
        self._locked.add(round_n)

    def is_locked(self, round_n: int) -> bool:
        return round_n in self._locked

    def require_locked(self, round_n: int, what: str) -> None:
        if round_n not in self._locked:
            raise FairPlayError(f"refusing to read {what} of round {round_n}: the bot has not locked its guess yet")


@dataclass
class FairPlay:
    """The response filter, the pano aliases and the guard of one game, locked and armed together.

    ``state_url`` matches URLs whose responses carry game state (JSON APIs and game pages); ``keep_under``
    names subtrees that are never stripped. ``install(context)`` adds the routes to a Playwright context.
    """

    state_url: re.Pattern
    keep_under: tuple[str, ...] = ("bounds",)
    state: ScrubState = field(default_factory=ScrubState)
    aliases: PanoAliases = field(default_factory=PanoAliases)
    guard: TruthGuard = field(default_factory=TruthGuard)
    stripped_fields: int = 0
    on_scrub: Callable[[str, int], None] | None = None

    def lock(self, round_n: int) -> None:
        """Called just before the guess of ``round_n`` is sent: from now on its truth may pass."""
        self.guard.lock(round_n)
        self.state.cleared_through = max(self.state.cleared_through, round_n)
        self.state.current_locked = True

    def arm(self) -> None:
        """Called once a round's result is read, before moving on: the next round is hidden again."""
        self.state.current_locked = False

    def scrub_json(self, data: Any) -> Any:
        """Defence in depth for JSON the adapter fetches itself."""
        clean, n = scrub(data, self.state, self.aliases, self.keep_under)
        self.stripped_fields += n
        return clean

    def install(self, context: Any) -> None:
        context.route(self._wants, self._handle)

    def _wants(self, url: str) -> bool:
        return bool(self.state_url.search(url)) or self.aliases.matches(url)

    def _handle(self, route: Any) -> None:
        from playwright.sync_api import Error as PlaywrightError

        url = route.request.url
        real_url = self.aliases.rewrite(url)
        try:
            if not self.state_url.search(url):  # a tile or metadata request that carries an alias
                return route.continue_(url=real_url)
            try:
                resp = route.fetch(url=real_url) if real_url != url else route.fetch()
            except PlaywrightError as e:  # network error: the page sees a failed request, as without the filter
                log.debug("fair-play fetch failed for %s: %s", url, str(e).splitlines()[0])
                return route.abort()
            headers = {k: v for k, v in resp.headers.items()
                       if k.lower() not in ("content-length", "content-encoding")}
            body, n = scrub_body(resp.body(), headers.get("content-type", ""), self.state, self.aliases,
                                 self.keep_under)
            if n:
                self.stripped_fields += n
                if self.on_scrub is not None:
                    self.on_scrub(url, n)
            route.fulfill(status=resp.status, headers=headers, body=body)
        except PlaywrightError as e:  # the page or context went away mid-request (navigation, teardown)
            log.debug("fair-play route for %s dropped: %s", url, str(e).splitlines()[0])
