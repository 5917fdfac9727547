"""Site adapter for geoguessr.com (classic games, challenge links, duels, team duels), from public tooling
(docs/bot.md, "Live site", names the source of every field and endpoint).

* Auth: the ``_ncfa`` session cookie, from the environment (``GEOGUESSR_NCFA``) or a Playwright storage state
  saved by ``pigeon login``; never logged: ``Redactor`` scrubs it from log records and errors.
* Pages: ``/game/{token}`` (classic), ``/challenge/{token}`` (state ``GET /api/v3/challenges/{token}/game``,
  guesses to the game token it names), ``/duels/{id}`` and ``/team-duels/{id}`` (game server
  ``/api/duels/{id}``). Party and battle-royale pages are watch-only: ``open_game`` refuses them before acting.
* State: the game JSON, fetched by the page (so it passes the fair-play filter), plus what the DOM shows. The
  bot's own requests are paced: at most one per ``min_request_interval_s`` (1 s).
* Rules, clock and map: ``forbidMoving/Rotating/Zooming`` (classic) or ``movementOptions`` (duels) -> ``Rules``
  (NMPZ: one view, the panorama never turned; NZ: the zoom never touched); the deadline from ``timeLimit`` +
  ``rounds[].startTime`` (classic) or ``roundTime`` + ``timerStartTime`` (duels); the score decay of the map
  from ``bounds`` (classic) or ``map.maxErrorDistance`` (duels).
* Capture: UI hidden by injected CSS; the heading set exactly through the hooked StreetViewPanorama (keyboard
  turns from the start view when it cannot be hooked); one element screenshot of ``#panorama-container`` each.
* Guess: the hooked guess map is centred and zoomed onto the point, which is then clicked at its Web Mercator
  position (``bot.mercator``) and the Guess button pressed; the game API is the fallback.
* ``record_dir``: scrubbed DOM and JSON snapshots of every state change (``Recorder``), loadable as fixtures.

The live site cannot be reached from the build machine: everything here is tested against local fixture pages
that copy its structure (tests/geoguessr_fixture.py); live runs are manual (docs/bot.md).
"""
from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bot import mercator
from bot.config import GeoGuessrConfig, PlayConfig
from bot.fairplay import FairPlay, ScrubState, scrub
from bot.selectors import SelectorError, load_registry
from bot.sites import geoguessr_js as js
from bot.sites.base import (GameSummary, GuessResult, Phase, PlacedGuess, RoundResult, RoundState, Rules,
                            SiteError, WatchOnly)
from model.geo.geography import GEOGUESSR_MAX_SCORE
from model.paths import project_path

log = logging.getLogger(__name__)
DOM_KEYS = ("round_number", "round_timer", "result_layout", "game_finished", "hp_labels")
# URL kinds: what the bot plays, and what it only watches (never acts on)
PLAYABLE = {"game": "classic", "challenge": "challenge", "duels": "duel", "team-duels": "team-duel"}
WATCH_ONLY = ("battle-royale", "party", "live-challenge", "bullseye", "live")
URL_RE = re.compile(r"/(game|challenge|duels|team-duels|battle-royale|party|live-challenge|bullseye|live)"
                    r"(?:/([\w-]+))?/?$")
# scoring (docs/bot.md, "Scoring"): 5000 * exp(-10 d / D), D the map's diagonal; 5000 within 25 m
FULL_SCORE_M = 25.0
# the sphere the site measures map diagonals on: 6,371 km gives the world map's 14,916.862 km, whose decay reproduces
# a recorded game's five scores exactly (docs/bot.md, "Scoring"); model.geo's WGS-84 equatorial radius is 2 km off
MAP_RADIUS_KM = 6371.0
DECAY_PER_DIAGONAL = 10.0
RETURN_TO_START_KEY = "r"   # GeoGuessr's "back to start" key (ParthGandhi/geoguessr-agent browser_ops.py)


# ---- pure helpers (unit-tested against recorded responses) ------------------------------------------------------
def map_decay_km(bounds: dict | None = None, max_error_m: float | None = None) -> float | None:
    """The map's score decay in km: ``maxErrorDistance`` / 10 (metres -> km), else the great-circle diagonal of
    ``bounds`` ({min: {lat, lng}, max: {lat, lng}}) / 10; None without either."""
    if max_error_m:
        return float(max_error_m) / 1000.0 / DECAY_PER_DIAGONAL
    try:
        lo, hi = bounds["min"], bounds["max"]  # type: ignore[index]
        p1, p2 = math.radians(float(lo["lat"])), math.radians(float(hi["lat"]))
        dl = math.radians(float(hi["lng"]) - float(lo["lng"]))
    except (TypeError, KeyError, ValueError):
        return None
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    diag = 2 * MAP_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
    return diag / DECAY_PER_DIAGONAL if diag > 0 else None


def round_points(dist_m: float, decay_km: float) -> int:
    """GeoGuessr's points for a guess ``dist_m`` metres off on a map with ``decay_km``: 5000 within 25 m."""
    if dist_m < FULL_SCORE_M:
        return GEOGUESSR_MAX_SCORE
    return int(round(GEOGUESSR_MAX_SCORE * math.exp(-dist_m / 1000.0 / decay_km)))


def parse_time_ms(text: str | None) -> float | None:
    """Epoch milliseconds of an ISO-8601 time as the API writes it (7 fraction digits, 'Z' or an offset)."""
    if not text:
        return None
    m = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text.strip())
    if m is None:
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    tz = m.group(3) or "+00:00"
    try:
        dt = datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if tz == 'Z' else tz}")
    except ValueError:
        return None
    return dt.timestamp() * 1000.0


def rules_of(forbid: dict | None) -> Rules | None:
    """``Rules`` from a dict with ``forbidMoving/Rotating/Zooming`` (None when none of them is there)."""
    if not isinstance(forbid, dict) or not any(k in forbid for k in ("forbidMoving", "forbidRotating",
                                                                      "forbidZooming")):
        return None
    return Rules(bool(forbid.get("forbidMoving")), bool(forbid.get("forbidRotating")),
                 bool(forbid.get("forbidZooming")))


def _left_s(deadline_ms: float | None, now_ms: float) -> float | None:
    return None if deadline_ms is None else max(0.0, (deadline_ms - now_ms) / 1000.0)


def _int(text: str | None) -> int | None:
    digits = re.sub(r"[^\d]", "", text or "")
    return int(digits) if digits else None


def _clock_s(text: str | None) -> float | None:
    m = re.search(r"(\d+):(\d{2})", text or "")
    return None if m is None else int(m.group(1)) * 60 + int(m.group(2))


def _round_label(text: str | None) -> int | None:
    m = re.search(r"(\d+)\s*/\s*(\d+)", text or "")
    return int(m.group(1)) if m else None


def classic_state(api: dict, dom: dict, now_ms: float, game_id: str) -> RoundState:
    """A classic (or challenge) game's state from ``GET /api/v3/games/{token}`` and the DOM snapshot."""
    total, n_guessed = api["roundCount"], len(api["player"]["guesses"])
    rounds = api.get("rounds") or []
    cur = rounds[api.get("round", len(rounds)) - 1] if rounds else {}
    limit = api.get("timeLimit") or 0
    start = parse_time_ms(cur.get("startTime"))
    left = _left_s(start + limit * 1000.0, now_ms) if limit > 0 and start is not None else _clock_s(dom["timer"])
    common = dict(rounds_total=total, game_id=game_id, time_left_s=left, rules=rules_of(api),
                  decay_km=map_decay_km(api.get("bounds")))
    if api["state"] == "finished" and n_guessed >= total:
        return RoundState(Phase.FINISHED, round_n=total, **common)
    if dom["result"]:
        return RoundState(Phase.RESULT, round_n=n_guessed, **common)
    n = _round_label(dom["round"])
    if n is None:
        return RoundState(Phase.WAITING, **common)
    return RoundState(Phase.RESULT if n_guessed >= n else Phase.GUESSING, round_n=n, **common)


def duel_teams(api: dict, me: str | None) -> tuple[dict, dict, dict]:
    """(own team, opposing team, own player) of a duel or team duel; WatchOnly when ``me`` has no seat."""
    for t in api["teams"]:
        for p in t["players"]:
            if p["playerId"] == me:
                return t, next(o for o in api["teams"] if o is not t), p
    raise WatchOnly(f"this account ({me}) plays in none of the duel's teams: watching only, never acting")


def duel_deadline_ms(api: dict, rnd: dict) -> float | None:
    """The round's end: ``timerStartTime`` + ``roundTime`` once the countdown runs, else ``endTime``, else
    ``startTime`` + ``maxRoundTime`` (epoch ms; None without a clock)."""
    opts = api.get("options") or {}
    t0, rt = parse_time_ms(rnd.get("timerStartTime")), opts.get("roundTime")
    if t0 is not None and rt:
        return t0 + float(rt) * 1000.0
    end = parse_time_ms(rnd.get("endTime"))
    if end is not None:
        return end
    start, mx = parse_time_ms(rnd.get("startTime")), opts.get("maxRoundTime")
    return start + float(mx) * 1000.0 if start is not None and mx else None


def duel_state(api: dict, dom: dict, me: str | None, now_ms: float, game_id: str) -> RoundState:
    """A duel's (or team duel's) state from ``GET game-server /api/duels/{id}`` and the DOM snapshot."""
    own, opp, player = duel_teams(api, me)
    n = api["currentRoundNumber"]
    opts = api.get("options") or {}
    rnd = api["rounds"][n - 1] if 0 < n <= len(api["rounds"]) else {}
    hp = [_int(t) for t in dom["hp"]]
    total = opts.get("maxNumberOfRounds", api.get("maxNumberOfRounds"))
    guessed = lambda players: any(g["roundNumber"] == n for p in players for g in p["guesses"])
    left = _left_s(duel_deadline_ms(api, rnd), now_ms)
    common = dict(round_n=n, rounds_total=total or None, game_id=game_id,   # 0 = unlimited
                  time_left_s=left if left is not None else _clock_s(dom["timer"]),
                  multiplier=own.get("currentMultiplier", rnd.get("multiplier")),
                  hp_own=hp[0] if len(hp) == 2 and hp[0] is not None else own["health"],
                  hp_opponent=hp[1] if len(hp) == 2 and hp[1] is not None else opp["health"],
                  opponent_guessed=guessed(opp["players"]),
                  rules=rules_of(api.get("movementOptions") or opts.get("movementOptions")),
                  decay_km=map_decay_km((opts.get("map") or {}).get("bounds") or api.get("mapBounds"),
                                        (opts.get("map") or {}).get("maxErrorDistance")))
    if api["status"] == "Finished":
        return RoundState(Phase.FINISHED, **common)
    if any(r["roundNumber"] == n for r in own["roundResults"]):
        return RoundState(Phase.RESULT, **common)
    if guessed([player]):   # this player's own guess: a teammate's does not end our round
        return RoundState(Phase.GUESSED, **common)
    if _round_label(dom["round"]) not in (None, n):
        return RoundState(Phase.WAITING, **common)  # the page still shows the previous round
    return RoundState(Phase.GUESSING, **common)


def classic_result(api: dict, n: int) -> RoundResult:
    """Round ``n`` of a classic game: score and distance of the guess, the truth and its country
    (``streakLocationCode``; classic rounds carry no ``countryCode``)."""
    g = api["player"]["guesses"][n - 1] if len(api["player"]["guesses"]) >= n else None
    t = api["rounds"][n - 1]
    cc = t.get("streakLocationCode") or t.get("countryCode") or ""
    return RoundResult(n, g["roundScoreInPoints"] if g else 0, g["distanceInMeters"] / 1000 if g else None,
                       t.get("lat"), t.get("lng"), cc.upper() or None, g["lat"] if g else None,
                       g["lng"] if g else None, bool(g["timedOut"]) if g else True)


def duel_result(api: dict, n: int, me: str | None) -> RoundResult:
    """Round ``n`` of a duel: this player's guess, the team's score, HP and the team's own multiplier
    (``teams[].roundResults[].multiplier``; ``rounds[].multiplier`` is always 1)."""
    own, opp, player = duel_teams(api, me)
    p = api["rounds"][n - 1]["panorama"]
    g = next((g for g in player["guesses"] if g["roundNumber"] == n), None)
    mine = next((r for r in own["roundResults"] if r["roundNumber"] == n), {})
    theirs = next((r for r in opp["roundResults"] if r["roundNumber"] == n), {})
    return RoundResult(n, mine.get("score", 0), g["distance"] / 1000 if g else None, p.get("lat"), p.get("lng"),
                       (p.get("countryCode") or "").upper() or None, g["lat"] if g else None,
                       g["lng"] if g else None, g is None, mine.get("healthAfter"), theirs.get("healthAfter"),
                       (mine.get("healthBefore", 0) - mine.get("healthAfter", 0)) if mine else None,
                       mine.get("multiplier"), theirs.get("score"))


class Redactor(logging.Filter):
    """Replaces a secret (the session cookie) in every log record passing through the handler or logger."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def redact(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            msg = record.getMessage()
            if self.secret in msg:
                record.msg, record.args = self.redact(msg), ()
        return True


class Throttle:
    """At most one request per ``interval_s``: ``with throttle:`` around each request waits until ``interval_s``
    has passed since the previous one *finished* (so a request the busy page sent late cannot crowd the next)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval_s, self.clock, self.sleep = interval_s, clock, sleep
        self.last: float | None = None

    def __enter__(self) -> Throttle:
        if self.last is not None:
            gap = self.last + self.interval_s - self.clock()
            if gap > 0:
                self.sleep(gap)
        return self

    def __exit__(self, *exc: object) -> None:
        self.last = self.clock()


# ---- drift tooling ------------------------------------------------------------------------------------------------
SECRET_KEYS = frozenset({"id", "userid", "playerid", "token", "gametoken", "gameid", "challengetoken", "nick",
                         "playername", "email", "pinurl", "url", "avatar", "fullbodypath", "devicetoken",
                         "creator", "tournamentid", "gameservernodeid", "consumedlocationsidentifier"})
COOKIE_RE = re.compile(r"\b(_ncfa|_csrf|session|devicetoken|__Host-[\w-]+)=[^;\"'\s&]+", re.IGNORECASE)
SCRIPT_RE = re.compile(r"<script\b(?![^>]*id=\"__NEXT_DATA__\")[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)
PANO_SRC_RE = re.compile(r"""\s(?:src|href|srcset)=("[^"]*(?:streetview|panoid|cbk|googleapis)[^"]*"|"""
                         r"""'[^']*(?:streetview|panoid|cbk|googleapis)[^']*')""", re.IGNORECASE)


class Recorder:
    """Writes scrubbed snapshots of each state change to ``out``: ``NNN-<phase>-r<round>.html`` (the DOM) and
    ``.json`` ({kind, me, phase, round, now, api, dom}), for tests to load as fixtures (docs/bot.md, "Drift").

    Scrubbed: the cookie, cookie-like strings, every value under an id/token/name key (replaced by stable
    pseudonyms, the same in every file, so the snapshots stay consistent), scripts other than ``__NEXT_DATA__``,
    image sources that point at Street View; locations of every round that has not ended yet.
    """

    def __init__(self, out: Path, secret: str = "") -> None:
        self.out, self.secret = Path(out), secret
        self.out.mkdir(parents=True, exist_ok=True)
        self.alias: dict[str, str] = {}
        self.seq, self.ended_through, self.last_sig = 0, 0, None

    def pseudonym(self, value: str) -> str:
        if value not in self.alias:
            self.alias[value] = f"anon{len(self.alias) + 1:03d}"
        return self.alias[value]

    def _pseudonymize(self, node: Any) -> Any:
        """A copy of JSON data with every string under an id/token/name key replaced by its pseudonym."""
        if isinstance(node, dict):
            return {k: self.pseudonym(v) if k.lower() in SECRET_KEYS and isinstance(v, str) and v
                    else self._pseudonymize(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._pseudonymize(x) for x in node]
        return node

    def text(self, s: str) -> str:
        """``s`` with the secret, cookie values and every known id/name (whole words, 3+ characters) replaced."""
        if self.secret:
            s = s.replace(self.secret, "***")
        s = COOKIE_RE.sub(lambda m: f"{m.group(1)}=***", s)
        for real in sorted((r for r in self.alias if len(r) >= 3), key=len, reverse=True):
            s = re.sub(rf"(?<![\w-]){re.escape(real)}(?![\w-])", self.alias[real], s)
        return s

    def record(self, kind: str, me: str | None, state: RoundState, snap: dict, html: str) -> None:
        if state.phase in (Phase.RESULT, Phase.FINISHED) and state.round_n:
            self.ended_through = max(self.ended_through, state.round_n)
        if me:
            self.pseudonym(me)
        hide = ScrubState(cleared_through=self.ended_through,
                          current_locked=state.phase in (Phase.RESULT, Phase.FINISHED))
        api = self._pseudonymize(scrub(snap["api"], hide)[0])
        body = {"kind": kind, "me": self.pseudonym(me) if me else None, "phase": state.phase.value,
                "round": state.round_n, "now": snap["now"], "api": api, "dom": snap["dom"]}
        html = PANO_SRC_RE.sub(' data-scrubbed-src=""', SCRIPT_RE.sub("", html))
        html = re.sub(r'(<script[^>]*id="__NEXT_DATA__"[^>]*>)(.*?)(</script>)',
                      lambda m: m.group(1) + json.dumps(self._pseudonymize(scrub(_loads(m.group(2)), hide)[0]))
                      .replace("</", "<\\/")
                      + m.group(3), html, flags=re.DOTALL)
        self.seq += 1
        stem = self.out / f"{self.seq:03d}-{state.phase.value}-r{state.round_n or 0}"
        stem.with_suffix(".json").write_text(self.text(json.dumps(body, indent=1, sort_keys=True)) + "\n",
                                             encoding="utf-8")
        stem.with_suffix(".html").write_text(self.text(html), encoding="utf-8")


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {}


def load_recording(folder: Path) -> list[tuple[dict, str]]:
    """The (json, html) pairs a ``Recorder`` wrote, in order."""
    return [(json.loads(p.read_text(encoding="utf-8")), p.with_suffix(".html").read_text(encoding="utf-8"))
            for p in sorted(Path(folder).glob("*.json"))]


def state_of_recorded(rec: dict) -> RoundState:
    """What the adapter reads from one recorded snapshot (the same parser as live play)."""
    if rec["kind"] in ("duel", "team-duel"):
        return duel_state(rec["api"], rec["dom"], rec["me"], rec["now"], "recorded")
    return classic_state(rec["api"], rec["dom"], rec["now"], "recorded")


# ---- the adapter --------------------------------------------------------------------------------------------------
class GeoGuessrSite:
    """One game on geoguessr.com (or a fixture of it) in ``context``. ``url``: a /game/, /challenge/, /duels/ or
    /team-duels/ page (None: a new classic game). ``cookie``: the ``_ncfa`` value to add to the context (None when
    the context already carries a saved login); it is redacted everywhere either way."""

    name = "geoguessr"

    def __init__(self, context: Any, cfg: GeoGuessrConfig, play: PlayConfig, *, cookie: str | None,
                 url: str | None = None, timeout_ms: float = 15_000.0, secret: str | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ctx, self.cfg, self.play, self.url, self.timeout_ms = context, cfg, play, url, timeout_ms
        self.redactor = Redactor(cookie or secret or "")
        self.sel, extra = load_registry(project_path(cfg.selectors))
        self.api_paths, self.capture_cfg = extra.get("api", {}), extra.get("capture", {})
        fp = extra.get("fairplay", {})
        self.fairplay = FairPlay(re.compile(fp["state_url"]), tuple(fp.get("keep_under", ("bounds",))))
        self.fairplay.install(context)
        if cookie:
            self._add_cookie(cookie)
        context.add_init_script(js.HOOK_SCRIPT)
        self.page = context.new_page()
        self.kind, self.game_id, self.guess_token, self.me = "classic", "", "", None
        self.throttle = Throttle(cfg.min_request_interval_s, clock, sleep)
        self.rules: Rules | None = None
        self.recorder = Recorder(project_path(cfg.record_dir), self.redactor.secret) if cfg.record_dir else None
        self._sig: str | None = None
        self._start_heading: dict[int, float] = {}
        self._dom_sel = {k: list(self.sel.candidates(k)) for k in DOM_KEYS}

    @property
    def mode(self) -> str:
        return "duel" if self.kind in ("duel", "team-duel") else "classic"

    def _add_cookie(self, cookie: str) -> None:
        cookies = []
        for base in {self.cfg.base_url, self.cfg.game_server_url}:
            u = urlparse(base)
            cookies.append({"name": "_ncfa", "value": cookie, "url": f"{u.scheme}://{u.netloc}", "httpOnly": True,
                            "secure": u.scheme == "https"})
        self.ctx.add_cookies(cookies)

    def _err(self, msg: str) -> SiteError:
        return SiteError(self.redactor.redact(msg))

    # ---- requests (all paced) ----------------------------------------------------------------------------------
    def _api_url(self, key: str) -> str:
        path = self.api_paths[key].format(token=self.guess_token or self.game_id, id=self.game_id,
                                          challenge=self.game_id, game_server=self.cfg.game_server_url)
        return path if path.startswith("http") else self.cfg.base_url.rstrip("/") + path

    def _state_url(self) -> str:
        return self._api_url({"duel": "duel_state", "team-duel": "duel_state",
                              "challenge": "challenge_state"}.get(self.kind, "classic_state"))

    def _call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        from playwright.sync_api import Error as PlaywrightError

        try:
            with self.throttle:
                res = self.page.evaluate(js.API_JS, [method, url, body])
        except PlaywrightError as e:
            raise self._err(f"{method} {url} failed in the page: {str(e).splitlines()[0]}") from e
        if res["status"] == 401:
            raise self._err("geoguessr.com answered 401: the _ncfa cookie is missing or expired "
                            f"(set {self.cfg.cookie_env} or run `pigeon login`; see docs/bot.md)")
        return res["status"], self.fairplay.scrub_json(res["body"])

    def _goto(self, url: str) -> None:
        with self.throttle:
            self.page.goto(url)

    # ---- Site protocol -------------------------------------------------------------------------------------
    def open_game(self, mode: str, rounds: int) -> str:
        base = self.cfg.base_url.rstrip("/")
        if self.url is not None:
            self._classify(self.url)   # before any request: watch-only pages are refused untouched
        self._goto(self.url or base + "/")
        status, profile = self._call("GET", base + self.api_paths["profile"])
        if status != 200:
            raise self._err(f"profile check answered HTTP {status}")
        self.me = profile["user"]["id"]
        if self.url is None:
            if mode != "classic":
                raise ValueError("geoguessr duels need --url of a duel page you joined (lobbies are not automated)")
            status, game = self._call("POST", base + self.api_paths["classic_create"],
                                      {"map": self.api_paths.get("classic_map", "world"), "type": "standard",
                                       "timeLimit": 0, "forbidMoving": False, "forbidZooming": False,
                                       "forbidRotating": False, "rounds": rounds})
            if status != 200:
                raise self._err(f"creating a classic game answered HTTP {status}: {game}")
            self.url = f"{base}/game/{game['token']}"
            self._goto(self.url)
        self.kind, self.game_id = self._classify(self.url)
        if self.kind == "challenge":
            status, game = self._call("GET", self._state_url())
            if status != 200:
                raise self._err(f"the challenge's game answered HTTP {status}: open the challenge link once and "
                                "press Play, then pass it again")
            self.guess_token = game["token"]
        return self.game_id

    @staticmethod
    def _classify(url: str) -> tuple[str, str]:
        """(kind, id) of a game URL; WatchOnly for party/battle-royale pages, ValueError for anything else."""
        m = URL_RE.search(urlparse(url).path)
        if m is None or (m.group(1) in PLAYABLE and not m.group(2)):
            raise ValueError(f"not a GeoGuessr game URL: {url} (expected .../game/<token>, .../challenge/<token>, "
                             ".../duels/<id> or .../team-duels/<id>)")
        if m.group(1) in WATCH_ONLY:
            raise WatchOnly(f"{m.group(1)} pages are watch-only: the bot does not play them and sends nothing there")
        return PLAYABLE[m.group(1)], m.group(2)

    def _snapshot(self) -> dict:
        from playwright.sync_api import Error as PlaywrightError

        try:
            with self.throttle:
                return self.page.evaluate(js.SNAPSHOT_JS, {"apiUrl": self._state_url(), "sel": self._dom_sel})
        except PlaywrightError as e:
            raise self._err(f"reading the game state failed: {str(e).splitlines()[0]}") from e

    def observe(self) -> RoundState:
        snap = self._snapshot()
        self._sig = snap["sig"]
        return self._state_of(snap)

    def wait_for_change(self, previous: RoundState, timeout_s: float) -> RoundState:
        """Paced snapshots until the signature changes or ``timeout_s`` would be overrun."""
        end = time.monotonic() + timeout_s
        while True:
            old = self._sig
            st = self.observe()
            if self._sig != old or time.monotonic() + self.throttle.interval_s > end:
                return st

    def _state_of(self, snap: dict) -> RoundState:
        api, dom = snap["api"], snap["dom"]
        if api.get("__status") == 401:
            raise self._err(f"geoguessr.com answered 401: set a fresh _ncfa cookie in {self.cfg.cookie_env}")
        if api.get("__status") == 0:
            raise self._err(f"geoguessr.com unreachable: {api.get('__error', 'network error')}")
        if "__status" in api:
            return RoundState(Phase.WAITING, game_id=self.game_id)
        st = (duel_state(api, dom, self.me, snap["now"], self.game_id) if self.mode == "duel"
              else classic_state(api, dom, snap["now"], self.game_id))
        self.rules = st.rules or self.rules
        if self.recorder is not None and snap["sig"] != self.recorder.last_sig:
            self.recorder.last_sig = snap["sig"]
            self.recorder.record(self.kind, self.me, st, snap, self.page.content())
        return st

    # ---- capture ---------------------------------------------------------------------------------------------
    def capture_views(self, round_n: int, n_views: int) -> list[bytes]:
        """``n_views`` headings (one where the rules forbid turning: the panorama is then never touched)."""
        rules = self.rules or Rules()
        n_views = rules.views(n_views)
        pano, _ = self.sel.find(self.page, "panorama", self.timeout_ms)
        self._wait_idle(pano)
        hooked = self.page.evaluate(js.START_HEADING_JS)
        if hooked is not None:
            self._start_heading.setdefault(round_n, float(hooked))
        shots = []
        self.page.evaluate("(css) => { let s = document.getElementById('pigeon-capture-css');"
                           " if (!s) { s = document.createElement('style'); s.id = 'pigeon-capture-css';"
                           " s.textContent = css; document.head.appendChild(s); }"
                           " document.documentElement.classList.add('pigeon-capture'); }",
                           js.capture_css(self.capture_cfg.get("hide", [])))
        try:
            start = self._start_heading.get(round_n)
            turn = not rules.forbid_rotating
            for k in range(n_views):
                if turn and start is not None:
                    self._set_heading((start + 360.0 * k / n_views) % 360.0, not rules.forbid_zooming)
                elif turn and k == 0:
                    self._back_to_start(pano)
                elif turn:
                    self._turn_by_keyboard(360.0 / n_views)
                shots.append(pano.screenshot(type="png", animations="disabled", caret="hide"))
            if turn and start is not None and n_views > 1:
                self._set_heading(start, not rules.forbid_zooming)
            elif turn and start is None and n_views > 1:
                self.page.keyboard.press(RETURN_TO_START_KEY)
        finally:
            self.page.evaluate("document.documentElement.classList.remove('pigeon-capture')")
        return shots

    def _wait_idle(self, pano: Any) -> None:
        """Bounded: the loading spinner gone and the panorama laid out."""
        spinner = self.sel.candidates("spinner")
        self.page.wait_for_function("(sels) => !sels.some((s) => { const e = document.querySelector(s);"
                                    " return e && (e.checkVisibility ? e.checkVisibility() : e.offsetParent); })",
                                    arg=list(spinner), timeout=self.timeout_ms)
        pano.wait_for(state="visible", timeout=self.timeout_ms)

    def _set_heading(self, heading: float, allow_zoom: bool = True) -> None:
        self.page.evaluate(js.SET_HEADING_JS, [heading, list(self.sel.candidates("spinner")),
                                               self.cfg.tile_settle_ms, self.timeout_ms, allow_zoom])

    def _back_to_start(self, pano: Any) -> None:
        """Keyboard fallback: focus the panorama (a click only where nothing is focusable; in moving games a click
        can move the camera) and press the return-to-start key, so the first view is the start view."""
        target = pano.locator("[tabindex]")
        if target.count():
            target.first.focus()
        else:
            pano.click()
        self.page.keyboard.press(RETURN_TO_START_KEY)
        self._settle()

    def _turn_by_keyboard(self, degrees: float) -> None:
        """Fallback without the panorama hook: arrow presses (headings approximate)."""
        presses = round(self.capture_cfg.get("keyboard_presses_per_90", 4) * degrees / 90.0)
        for _ in range(presses):
            self.page.keyboard.press("ArrowRight")
        self._settle()

    def _settle(self) -> None:
        self.page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        if self.cfg.tile_settle_ms:
            self.page.evaluate("(ms) => new Promise((r) => setTimeout(r, ms))", self.cfg.tile_settle_ms)

    # ---- guess -----------------------------------------------------------------------------------------------
    def place_guess(self, round_n: int, lat_deg: float, lon_deg: float) -> PlacedGuess:
        from playwright.sync_api import Error as PlaywrightError

        self.fairplay.lock(round_n)
        try:
            return self._guess_by_map(round_n, lat_deg, lon_deg)
        except (SiteError, PlaywrightError, SelectorError) as e:
            reason = self.redactor.redact(str(e).splitlines()[0])
            if not self.play.api_fallback:
                raise self._err(f"placing the guess on the map failed: {reason}") from e
            if self.observe().phase is not Phase.GUESSING:
                log.warning("map guess raised (%s) but the guess is in", reason)
                return PlacedGuess(round_n, lat_deg, lon_deg, "map", lat_deg, lon_deg)
            log.warning("map guess failed (%s); using the API", reason)
            return self._guess_by_api(round_n, lat_deg, lon_deg)

    def _guess_url(self) -> str:
        return self._api_url("duel_guess" if self.mode == "duel" else "classic_guess")

    def _guess_by_api(self, round_n: int, lat_deg: float, lon_deg: float) -> PlacedGuess:
        token = self.guess_token or self.game_id
        body = ({"lat": lat_deg, "lng": lon_deg, "roundNumber": round_n} if self.mode == "duel" else
                {"token": token, "lat": lat_deg, "lng": lon_deg, "timedOut": False, "stepsCount": 0})
        status, data = self._call("POST", self._guess_url(), body)
        # a stale round number (PIGEON's extension retries on 400: LukasHaas/PIGEON
        # bot/chrome_extension/scripts/duel.js); the controller observes again
        if status == 400:
            raise self._err(f"the guess API refused round {round_n} (HTTP 400, stale round?): {data}")
        if status != 200:
            raise self._err(f"the guess API answered HTTP {status}: {data}")
        if self.mode == "classic":
            with self.throttle:
                self.page.reload()  # the classic page does not notice a guess made beside it (docs/bot.md)
        return PlacedGuess(round_n, lat_deg, lon_deg, "api", lat_deg, lon_deg)

    def _guess_by_map(self, round_n: int, lat_deg: float, lon_deg: float) -> PlacedGuess:
        gmap, _ = self.sel.find(self.page, "guess_map", self.timeout_ms)
        gmap.hover()  # the minimap grows on hover: measure it expanded
        self.page.evaluate(js.SETTLED_SIZE_JS, [gmap.element_handle(), 2000])
        canvas, _ = self.sel.find(self.page, "guess_map_canvas", self.timeout_ms)
        view = canvas.evaluate(js.MAP_VIEW_JS, [lat_deg, lon_deg, self.cfg.guess_map_zoom])
        if view is None:
            raise self._err("the guess map is not hooked (google.maps.Map was never seen)")
        mv = mercator.MapView(view["lat"], view["lng"], view["zoom"], view["w"], view["h"])
        x, y = (float(v) for v in mercator.latlon_to_container_px(lat_deg, lon_deg, mv))
        if not mercator.inside(x, y, mv, margin_px=2):
            raise self._err(f"the guess point is outside the guess map ({x:.0f}, {y:.0f})")
        self.page.mouse.click(view["x"] + x, view["y"] + y)
        plat, plon = (float(v) for v in mercator.container_px_to_latlon(round(x), round(y), mv))
        button, _ = self.sel.find(self.page, "perform_guess", self.timeout_ms)
        url = self._guess_url()
        # the button makes the page send the guess: one of our requests
        with self.throttle, self.page.expect_response(
                lambda r: r.request.method == "POST" and r.url.split("?")[0] == url, timeout=self.timeout_ms) as resp:
            button.click()
        if resp.value.status != 200:
            raise self._err(f"the guess of round {round_n} answered HTTP {resp.value.status}")
        return PlacedGuess(round_n, lat_deg, lon_deg, "map", plat, plon)

    # ---- results -----------------------------------------------------------------------------------------------
    def read_result(self, round_n: int) -> RoundResult:
        if not self.fairplay.guard.is_locked(round_n):
            st = self.observe()  # a round that ended without our guess: nothing left to protect
            if (st.round_n or 0) > round_n or st.phase in (Phase.RESULT, Phase.FINISHED):
                self.fairplay.lock(round_n)
        self.fairplay.guard.require_locked(round_n, "the result")
        status, api = self._call("GET", self._state_url())
        if status != 200:
            raise self._err(f"game state answered HTTP {status}")
        res = duel_result(api, round_n, self.me) if self.mode == "duel" else classic_result(api, round_n)
        self.fairplay.arm()
        return res

    def next_round(self, round_n: int) -> None:
        if self.mode == "duel":
            return  # the next duel round starts by itself
        button, _ = self.sel.find(self.page, "close_round_result", self.timeout_ms)
        with self.throttle:   # the next round may be fetched by the page: paced like our own requests
            button.click()

    def summary(self) -> GameSummary:
        status, api = self._call("GET", self._state_url())
        if status != 200:
            raise self._err(f"game state answered HTTP {status}")
        if self.mode == "duel":
            own, opp, _ = duel_teams(api, self.me)
            res = api.get("result") or {}
            return GameSummary(self.game_id, sum(r["score"] for r in own["roundResults"]),
                               won=res.get("winningTeamId") == own["id"] if not res.get("isDraw") else None,
                               draw=bool(res.get("isDraw")), hp_own=own["health"], hp_opponent=opp["health"])
        return GameSummary(self.game_id, sum(g["roundScoreInPoints"] for g in api["player"]["guesses"]))

    def recover(self) -> None:
        self._goto(self.url or self.cfg.base_url)

    def screenshot(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))  # pixels only: Playwright's PNGs carry no cookies or URLs
        return path

    def post_predictions(self, round_n: int, guess: GuessResult) -> None:
        """geoguessr.com has no overlay of ours: nothing to post."""

    def check(self) -> dict[str, str | None]:
        """The selector self-test on the current page, plus whether the Maps hooks caught their instances."""
        found = self.sel.check(self.page)
        hooks = self.page.evaluate("() => { const h = window.__pigeonHook || {};"
                                   " return [!!h.sv, (h.maps || []).length > 0]; }")
        found["(hook) StreetViewPanorama"] = "hooked" if hooks[0] else None
        found["(hook) guess map"] = "hooked" if hooks[1] else None
        return found
