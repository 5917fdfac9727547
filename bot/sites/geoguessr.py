"""Site adapter for geoguessr.com (classic games and duels), from public tooling (docs/bot.md, "Live site").

* Auth: the ``_ncfa`` session cookie, read from the environment (``GEOGUESSR_NCFA``), is added to the browser
  context before the first navigation and never logged: ``Redactor`` scrubs it from log records and errors.
* Selectors: ``configs/selectors/geoguessr.toml`` (ordered fallbacks, a ``check`` self-test).
* State: the game JSON (classic ``/api/v3/games/{token}``, duels ``game-server /api/duels/{id}``) fetched by the
  page, so it passes the fair-play filter, plus what the DOM shows (result screen, round label, HP, timer).
* Capture: UI hidden by injected CSS; the heading set exactly through the hooked StreetViewPanorama (keyboard
  turns when it cannot be hooked); one element screenshot of ``#panorama-container`` per heading.
* Guess: the hooked guess map is centred and zoomed onto the point, which is then clicked at its Web Mercator
  position (``bot.mercator``) and the Guess button pressed; the game API is the fallback.

The live site cannot be reached from the build machine: everything here is tested against local fixture pages
that copy its structure (tests/geoguessr_fixture.py); live runs are manual (docs/bot.md).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bot import mercator
from bot.config import GeoGuessrConfig, PlayConfig
from model.paths import project_path
from bot.fairplay import FairPlay
from bot.selectors import SelectorError, load_registry
from bot.sites import geoguessr_js as js
from bot.sites.base import GameSummary, GuessResult, Phase, PlacedGuess, RoundResult, RoundState, SiteError

log = logging.getLogger(__name__)
DOM_KEYS = ("round_number", "round_timer", "result_layout", "game_finished", "hp_labels")


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


def _int(text: str | None) -> int | None:
    digits = re.sub(r"[^\d]", "", text or "")
    return int(digits) if digits else None


def _clock_s(text: str | None) -> float | None:
    m = re.search(r"(\d+):(\d{2})", text or "")
    return None if m is None else int(m.group(1)) * 60 + int(m.group(2))


def _round_label(text: str | None) -> int | None:
    m = re.search(r"(\d+)\s*/\s*(\d+)", text or "")
    return int(m.group(1)) if m else None


class GeoGuessrSite:
    """One game on geoguessr.com (or a fixture of it) in ``context``. ``url`` is a /game/ or /duels/ page."""

    name = "geoguessr"

    def __init__(self, context: Any, cfg: GeoGuessrConfig, play: PlayConfig, *, cookie: str | None,
                 url: str | None = None, timeout_ms: float = 15_000.0) -> None:
        self.ctx, self.cfg, self.play, self.url, self.timeout_ms = context, cfg, play, url, timeout_ms
        self.redactor = Redactor(cookie or "")
        self.sel, extra = load_registry(project_path(cfg.selectors))
        self.api_paths, self.capture_cfg = extra.get("api", {}), extra.get("capture", {})
        fp = extra.get("fairplay", {})
        self.fairplay = FairPlay(re.compile(fp["state_url"]), tuple(fp.get("keep_under", ("bounds",))))
        self.fairplay.install(context)
        if cookie:
            self._add_cookie(cookie)
        context.add_init_script(js.HOOK_SCRIPT)
        self.page = context.new_page()
        self.mode, self.game_id, self.me = "classic", "", None
        self._start_heading: dict[int, float] = {}
        self._dom_sel = {k: [s for s in self.sel.candidates(k)] for k in DOM_KEYS}

    def _add_cookie(self, cookie: str) -> None:
        cookies = []
        for base in {self.cfg.base_url, self.cfg.game_server_url}:
            u = urlparse(base)
            cookies.append({"name": "_ncfa", "value": cookie, "url": f"{u.scheme}://{u.netloc}", "httpOnly": True,
                            "secure": u.scheme == "https"})
        self.ctx.add_cookies(cookies)

    def _err(self, msg: str) -> SiteError:
        return SiteError(self.redactor.redact(msg))

    # ---- API through the page ------------------------------------------------------------------------------
    def _api_url(self, key: str) -> str:
        path = self.api_paths[key].format(token=self.game_id, id=self.game_id, game_server=self.cfg.game_server_url)
        return path if path.startswith("http") else self.cfg.base_url.rstrip("/") + path

    def _state_url(self) -> str:
        return self._api_url("duel_state" if self.mode == "duel" else "classic_state")

    def _call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        from playwright.sync_api import Error as PlaywrightError

        try:
            res = self.page.evaluate(js.API_JS, [method, url, body])
        except PlaywrightError as e:
            raise self._err(f"{method} {url} failed in the page: {str(e).splitlines()[0]}") from e
        if res["status"] == 401:
            raise self._err("geoguessr.com answered 401: the _ncfa cookie is missing or expired "
                            f"(set {self.cfg.cookie_env}; see docs/bot.md)")
        return res["status"], self.fairplay.scrub_json(res["body"])

    # ---- Site protocol -------------------------------------------------------------------------------------
    def open_game(self, mode: str, rounds: int) -> str:
        base = self.cfg.base_url.rstrip("/")
        self.page.goto(self.url or base + "/")
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
            self.page.goto(self.url)
        m = re.search(r"/(game|duels)/([\w-]+)", urlparse(self.url).path)
        if m is None:
            raise ValueError(f"not a GeoGuessr game or duel URL: {self.url} (expected .../game/<token> or .../duels/<id>)")
        self.mode, self.game_id = ("duel" if m.group(1) == "duels" else "classic"), m.group(2)
        return self.game_id

    def _snapshot(self, wait_sig: str | None = None, timeout_s: float = 0.0) -> dict:
        from playwright.sync_api import Error as PlaywrightError

        arg = {"apiUrl": self._state_url(), "sel": self._dom_sel}
        try:
            if wait_sig is None:
                return self.page.evaluate(js.SNAPSHOT_JS, arg)
            return self.page.evaluate(js.WAIT_JS, [arg, wait_sig, timeout_s * 1000])
        except PlaywrightError as e:
            raise self._err(f"reading the game state failed: {str(e).splitlines()[0]}") from e

    def observe(self) -> RoundState:
        snap = self._snapshot()
        self._sig = snap["sig"]
        return self._state_of(snap)

    def wait_for_change(self, previous: RoundState, timeout_s: float) -> RoundState:
        snap = self._snapshot(getattr(self, "_sig", ""), timeout_s)
        self._sig = snap["sig"]
        return self._state_of(snap)

    def _state_of(self, snap: dict) -> RoundState:
        api, dom = snap["api"], snap["dom"]
        if api.get("__status") == 401:
            raise self._err(f"geoguessr.com answered 401: set a fresh _ncfa cookie in {self.cfg.cookie_env}")
        if "__status" in api:
            return RoundState(Phase.WAITING, game_id=self.game_id)
        if self.mode == "duel":
            return self._duel_state(api, dom)
        total, n_guessed = api["roundCount"], len(api["player"]["guesses"])
        common = dict(rounds_total=total, game_id=self.game_id, time_left_s=_clock_s(dom["timer"]))
        if api["state"] == "finished" and n_guessed >= total:
            return RoundState(Phase.FINISHED, round_n=total, **common)
        if dom["result"]:
            return RoundState(Phase.RESULT, round_n=n_guessed, **common)
        n = _round_label(dom["round"])
        if n is None:
            return RoundState(Phase.WAITING, **common)
        return RoundState(Phase.RESULT if n_guessed >= n else Phase.GUESSING, round_n=n, **common)

    def _teams(self, api: dict) -> tuple[dict, dict]:
        own = next((t for t in api["teams"] if any(p["playerId"] == self.me for p in t["players"])), None)
        if own is None:
            raise self._err(f"this account ({self.me}) plays in none of the duel's teams")
        return own, next(t for t in api["teams"] if t is not own)

    def _duel_state(self, api: dict, dom: dict) -> RoundState:
        own, opp = self._teams(api)
        n = api["currentRoundNumber"]
        hp = [_int(t) for t in dom["hp"]]
        rnd = api["rounds"][n - 1] if 0 < n <= len(api["rounds"]) else {}
        guessed = lambda team: any(g["roundNumber"] == n for p in team["players"] for g in p["guesses"])
        common = dict(round_n=n, rounds_total=api.get("options", {}).get("maxNumberOfRounds"), game_id=self.game_id,
                      time_left_s=_clock_s(dom["timer"]), multiplier=rnd.get("multiplier"),
                      hp_own=hp[0] if len(hp) == 2 and hp[0] is not None else own["health"],
                      hp_opponent=hp[1] if len(hp) == 2 and hp[1] is not None else opp["health"],
                      opponent_guessed=guessed(opp))
        if api["status"] == "Finished":
            return RoundState(Phase.FINISHED, **common)
        if any(r["roundNumber"] == n for r in own["roundResults"]):
            return RoundState(Phase.RESULT, **common)
        if guessed(own):
            return RoundState(Phase.GUESSED, **common)
        if _round_label(dom["round"]) not in (None, n):
            return RoundState(Phase.WAITING, **common)  # the page still shows the previous round
        return RoundState(Phase.GUESSING, **common)

    # ---- capture ---------------------------------------------------------------------------------------------
    def capture_views(self, round_n: int, n_views: int) -> list[bytes]:
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
            for k in range(n_views):
                if start is not None:
                    self._set_heading((start + 360.0 * k / n_views) % 360.0)
                elif k:
                    self._turn_by_keyboard(pano, 360.0 / n_views)
                shots.append(pano.screenshot(type="png", animations="disabled", caret="hide"))
            if start is not None:
                self._set_heading(start)
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

    def _set_heading(self, heading: float) -> None:
        self.page.evaluate(js.SET_HEADING_JS, [heading, list(self.sel.candidates("spinner")),
                                               self.cfg.tile_settle_ms, self.timeout_ms])

    def _turn_by_keyboard(self, pano: Any, degrees: float) -> None:
        """Fallback without the panorama hook: focus it, hold the turn key (headings approximate)."""
        presses = round(self.capture_cfg.get("keyboard_presses_per_90", 4) * degrees / 90.0)
        pano.locator("[tabindex]").first.focus() if pano.locator("[tabindex]").count() else pano.click()
        for _ in range(presses):
            self.page.keyboard.press("ArrowRight")
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
        body = ({"lat": lat_deg, "lng": lon_deg, "roundNumber": round_n} if self.mode == "duel" else
                {"token": self.game_id, "lat": lat_deg, "lng": lon_deg, "timedOut": False, "stepsCount": 0})
        status, data = self._call("POST", self._guess_url(), body)
        # a stale round number (PIGEON's extension retries on 400: LukasHaas/PIGEON
        # bot/chrome_extension/scripts/duel.js); the controller observes again
        if status == 400:
            raise self._err(f"the guess API refused round {round_n} (HTTP 400, stale round?): {data}")
        if status != 200:
            raise self._err(f"the guess API answered HTTP {status}: {data}")
        if self.mode == "classic":
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
        with self.page.expect_response(lambda r: r.request.method == "POST" and r.url.split("?")[0] == url,
                                       timeout=self.timeout_ms) as resp:
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
        res = self._duel_result(api, round_n) if self.mode == "duel" else self._classic_result(api, round_n)
        self.fairplay.arm()
        return res

    def _classic_result(self, api: dict, n: int) -> RoundResult:
        g = api["player"]["guesses"][n - 1] if len(api["player"]["guesses"]) >= n else None
        t = api["rounds"][n - 1]
        return RoundResult(n, g["roundScoreInPoints"] if g else 0, g["distanceInMeters"] / 1000 if g else None,
                           t.get("lat"), t.get("lng"), (t.get("countryCode") or "").upper() or None,
                           g["lat"] if g else None, g["lng"] if g else None, bool(g["timedOut"]) if g else True)

    def _duel_result(self, api: dict, n: int) -> RoundResult:
        own, opp = self._teams(api)
        p = api["rounds"][n - 1]["panorama"]
        g = next((g for pl in own["players"] for g in pl["guesses"] if g["roundNumber"] == n), None)
        mine = next((r for r in own["roundResults"] if r["roundNumber"] == n), {})
        theirs = next((r for r in opp["roundResults"] if r["roundNumber"] == n), {})
        return RoundResult(n, mine.get("score", 0), g["distance"] / 1000 if g else None, p.get("lat"), p.get("lng"),
                           (p.get("countryCode") or "").upper() or None, g["lat"] if g else None,
                           g["lng"] if g else None, g is None, mine.get("healthAfter"), theirs.get("healthAfter"),
                           (mine.get("healthBefore", 0) - mine.get("healthAfter", 0)) if mine else None,
                           api["rounds"][n - 1].get("multiplier"), theirs.get("score"))

    def next_round(self, round_n: int) -> None:
        if self.mode == "duel":
            return  # the next duel round starts by itself
        button, _ = self.sel.find(self.page, "close_round_result", self.timeout_ms)
        button.click()

    def summary(self) -> GameSummary:
        status, api = self._call("GET", self._state_url())
        if status != 200:
            raise self._err(f"game state answered HTTP {status}")
        if self.mode == "duel":
            own, opp = self._teams(api)
            res = api.get("result") or {}
            return GameSummary(self.game_id, sum(r["score"] for r in own["roundResults"]),
                               won=res.get("winningTeamId") == own["id"] if not res.get("isDraw") else None,
                               draw=bool(res.get("isDraw")), hp_own=own["health"], hp_opponent=opp["health"])
        return GameSummary(self.game_id, sum(g["roundScoreInPoints"] for g in api["player"]["guesses"]))

    def recover(self) -> None:
        self.page.goto(self.url or self.cfg.base_url)

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
