"""Site adapter for the local arena (arena/): the same page a human plays, driven through its data-qa hooks.

State is read from the arena's JSON API *from inside the page* (so every answer passes the fair-play filter of
the context); the panorama is captured as PNG screenshots with the HUD hidden, one per heading, turned with the
page's own rotate control; the guess is a click on the Leaflet guess map at the Web Mercator position of the
point (the map is zoomed onto the point first, so one pixel is under ``pin_km_per_px``), then the Guess button.
When the map route fails, the guess goes through the API instead (``api_fallback``).

The guess is pinned on the map at once but the Guess button is pressed only after the bot's belief (top-k and
heat map) is posted for the stream overlay, or at the next call if no belief comes: the arena accepts a belief
only before the guess is locked. A bot registers with the arena operator's bot token (``bot_token``, default
$PIGEON_ARENA_BOT_TOKEN). In blind games the arena itself holds the bot's guess back until a human-like delay.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from bot import mercator
from bot.config import PlayConfig
from bot.fairplay import FairPlay
from bot.selectors import SelectorRegistry
from bot.sites.base import GameSummary, GuessResult, Phase, PlacedGuess, RoundResult, RoundState, SiteError

log = logging.getLogger(__name__)

SELECTORS = SelectorRegistry({
    "panorama": ("[data-qa=panorama]", "#pano-img"),
    "rotate_right": ("[data-qa=rotate-right]", "#rotate-right"),
    "guess_map": ("[data-qa=guess-map]", "#guess-map"),
    "perform_guess": ("[data-qa=perform-guess]", "#guess-btn", "button:has-text('Guess')"),
    "round_number": ("[data-qa=round-number]", "#round-number"),
    "result_score": ("[data-qa=result-score]", "#result-score"),
    "close_round_result": ("[data-qa=close-round-result]", "#next-btn"),
}, required=("panorama", "guess_map", "perform_guess", "round_number"), source="bot/sites/arena.py")

# every JSON answer about a game (not its images); the filter strips location fields from these
STATE_URL = re.compile(r"/api/games/[0-9a-f]{16}(?:/(?:round|summary|overlay|join|next|rounds/\d+/(?:guess|result)))?"
                       r"(?:\?|$)")
# Before the page's scripts: keep the Leaflet map instances (to zoom the guess map onto the point) and add the
# capture style, which hides every overlay and shows the whole picture at its own resolution (never upscaled,
# so the capture holds the served pixels) while capturing.
INIT_SCRIPT = r"""
(() => {
  window.__pigeonMaps = [];
  const hook = () => {
    if (window.L && L.Map && !L.Map.__pigeonHooked) {
      L.Map.__pigeonHooked = true;
      L.Map.addInitHook(function () { window.__pigeonMaps.push(this); });
    }
  };
  document.addEventListener("DOMContentLoaded", () => {
    hook();
    const st = document.createElement("style");
    st.textContent = `html.pigeon-capture .hud, html.pigeon-capture .timer, html.pigeon-capture .duel-hud,
      html.pigeon-capture .pano-controls, html.pigeon-capture .guess-panel, html.pigeon-capture .banner,
      html.pigeon-capture #toast { visibility: hidden !important; }
      html.pigeon-capture #pano-strip { display: none !important; }
      html.pigeon-capture #pano-img { display: block !important; object-fit: contain !important;
        width: auto !important; height: auto !important; max-width: 100% !important; max-height: 100% !important;
        margin: auto; }
      html.pigeon-capture #panorama { display: flex !important; }`;
    document.head.appendChild(st);
  });
})();
"""
API_JS = """async ([method, path, token, body, extra]) => {
  const headers = {"X-Player-Token": token, ...(extra || {})};
  if (body !== null) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {method, headers, body: body === null ? undefined : JSON.stringify(body)});
  const text = await r.text();
  return {status: r.status, body: text ? JSON.parse(text) : null};
}"""
# Bounded waits inside the page (Playwright's wait_for_function does not await async predicates): poll every
# 250 ms until the game's phase/round key differs from the given one, or the time is up (then null).
WAIT_CHANGE_JS = """async ([path, token, oldKey, timeoutMs]) => {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const r = await fetch(path, {headers: {"X-Player-Token": token}});
    if (r.ok) {
      const st = await r.json(), rd = st.round;
      const key = st.status === "waiting" || !rd ? "waiting|null" : st.status === "finished" ? `finished|${rd.n}` :
        rd.closed ? `result|${rd.n}` : `${rd.your_guess ? "guessed" : "guessing"}|${rd.n}`;
      if (key !== oldKey) return st;
    }
    if (performance.now() + 250 > end) return null;
    await new Promise((res) => setTimeout(res, 250));
  }
}"""
WAIT_LOBBY_JS = """async ([token, pollMs, timeoutMs]) => {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const r = await fetch("/api/lobby", {headers: {"X-Player-Token": token}});
    // duels, and blind duels that drew a bot opponent (the lobby lists only those a bot may join)
    const games = r.ok ? (await r.json()).filter((g) => g.mode === "duel" || g.mode === "blind") : [];
    if (games.length) return games[0].id;
    if (performance.now() + pollMs > end) return null;
    await new Promise((res) => setTimeout(res, pollMs));
  }
}"""
# Turn with the page's rotate control (a DOM click works while the control is hidden) until view k of round n
# is shown and loaded; returns the picture's box for the screenshot. Bounded by the timeout.
NEXT_CLICK_TIMEOUT_MS = 3000  # the Next button: found and answered within this, else the API (next_round)

SHOW_VIEW_JS = """async ([imgSel, rotSel, n, k, nViews, timeoutMs]) => {
  const img = document.querySelector(imgSel), btn = document.querySelector(rotSel);
  const want = `/rounds/${n}/views/${k}`;
  for (let i = 0; i <= nViews && !(img.dataset.view === String(k) && img.src.endsWith(want)); i++) btn.click();
  if (!img.src.endsWith(want)) throw new Error(`view ${k} of round ${n} never showed (src ${img.src})`);
  if (!(img.complete && img.naturalWidth > 0)) {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`view ${k} did not load in ${timeoutMs} ms`)), timeoutMs);
      img.addEventListener("load", () => { clearTimeout(t); resolve(); }, {once: true});
      img.addEventListener("error", () => { clearTimeout(t); reject(new Error(`view ${k} failed to load`)); },
                           {once: true});
    });
  }
  const r = img.getBoundingClientRect(), s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
  const w = img.naturalWidth * s, h = img.naturalHeight * s;
  return {x: r.x + (r.width - w) / 2, y: r.y + (r.height - h) / 2, width: w, height: h};
}"""


class ArenaSite:
    """One bot player in the arena at ``base_url``, in its own browser context.

    ``join``: None creates the game; "lobby" joins the first open duel (or blind duel waiting for a bot) in the
    lobby; a game id joins that game.
    ``timer_s`` sets a round time limit on games it creates.
    """

    name = "arena"

    def __init__(self, context: Any, base_url: str, cfg: PlayConfig | None = None, *, join: str | None = None,
                 timer_s: float | None = None, duel_options: dict | None = None, player_name: str | None = None,
                 fairplay: FairPlay | None = None, timeout_ms: float = 15_000.0,
                 bot_token: str | None = None) -> None:
        self.ctx, self.base_url, self.cfg = context, base_url.rstrip("/"), cfg or PlayConfig()
        self.join, self.timer_s, self.duel_options = join, timer_s, duel_options
        self.player_name = player_name or self.cfg.player_name
        self.timeout_ms = timeout_ms
        self.fairplay = fairplay or FairPlay(STATE_URL)
        self.fairplay.install(context)
        context.add_init_script(INIT_SCRIPT)
        self.page = context.new_page()
        self.token: str | None = None
        self.game_id = ""
        self.bot_token = bot_token or os.environ.get("PIGEON_ARENA_BOT_TOKEN")
        self._pending: tuple[int, float, float, str] | None = None  # pinned, Guess not pressed yet

    # ---- API from inside the page -------------------------------------------------------------------------
    def _api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 204),
             headers: dict[str, str] | None = None) -> Any:
        from playwright.sync_api import Error as PlaywrightError

        try:
            res = self.page.evaluate(API_JS, [method, path, self.token or "", body, headers or {}])
        except PlaywrightError as e:
            raise SiteError(f"arena API {method} {path} failed in the page: {str(e).splitlines()[0]}") from e
        if res["status"] not in ok:
            detail = res["body"].get("detail") if isinstance(res["body"], dict) else res["body"]
            raise SiteError(f"arena API {method} {path} -> HTTP {res['status']}: {detail}")
        return res["body"]

    # ---- Site protocol ------------------------------------------------------------------------------------
    def open_game(self, mode: str, rounds: int) -> str:
        if mode not in ("classic", "duel"):
            raise ValueError(f"arena mode must be classic or duel, got {mode!r}")
        self.page.goto(self.base_url + "/")
        if self.token is None:
            if not self.bot_token:
                raise SiteError("the arena admits bots only with its operator's bot token: set "
                                "$PIGEON_ARENA_BOT_TOKEN (or pass bot_token) to the token the arena was started with")
            player = self._api("POST", "/api/players", {"name": self.player_name, "kind": "bot"},
                               headers={"X-Bot-Token": self.bot_token})
            self.token = player["token"]
            self.page.evaluate("(p) => localStorage.setItem('pigeon.arena.player', JSON.stringify(p))", player)
        if self.join is None:
            body: dict[str, Any] = {"mode": mode, "rounds": rounds}
            if self.timer_s is not None:
                body["timer_s"] = self.timer_s
            if mode == "duel" and self.duel_options:
                body["duel"] = self.duel_options
            gid = self._api("POST", "/api/games", body)["id"]
        else:
            gid = self._join_game()
        self.game_id = gid
        self.page.goto(f"{self.base_url}/play/{gid}")
        log.info("arena game %s (%s): %s/play/%s", gid, mode, self.base_url, gid)
        try:
            link = self._api("GET", f"/api/games/{gid}/overlay-link")["url"]
            log.info("stream overlay of game %s: %s%s", gid, self.base_url, link)
        except SiteError as e:
            log.debug("no overlay link: %s", e)
        return gid

    def _join_game(self) -> str:
        if self.join != "lobby":
            self._api("POST", f"/api/games/{self.join}/join")
            return str(self.join)
        gid = self._evaluate(WAIT_LOBBY_JS, [self.token or "", self.cfg.poll_s * 1000, self.cfg.stall_timeout_s * 1000])
        if not gid:
            raise SiteError(f"no open duel for a bot appeared in the lobby within {self.cfg.stall_timeout_s:.0f} s")
        self._api("POST", f"/api/games/{gid}/join")
        return str(gid)

    def observe(self) -> RoundState:
        self._flush()
        return self._state_of(self._api("GET", f"/api/games/{self.game_id}"))

    def _state_of(self, st: dict) -> RoundState:
        me = next((p for p in st["players"] if p.get("is_you")), None)
        opp = next((p for p in st["players"] if not p.get("is_you")), None)
        r = st.get("round")
        duel = st["mode"] != "classic"
        common = dict(rounds_total=st["rounds_total"], game_id=st["id"], hp_own=me["hp"] if duel and me else None,
                      hp_opponent=opp["hp"] if duel and opp else None)
        if st["status"] == "waiting" or r is None:
            return RoundState(Phase.WAITING, **common)
        others = [s for s in r["guessed_seats"] if s != st.get("you")]
        rs = dict(round_n=r["n"], time_left_s=r["time_left_s"], multiplier=r["multiplier"] if duel else None,
                  opponent_guessed=bool(others), **common)
        if st["status"] == "finished":
            return RoundState(Phase.FINISHED, **rs)
        if r["closed"]:
            return RoundState(Phase.RESULT, **rs)
        return RoundState(Phase.GUESSED if r["your_guess"] else Phase.GUESSING, **rs)

    def wait_for_change(self, previous: RoundState, timeout_s: float) -> RoundState:
        """One bounded wait in the page: re-read the state every 250 ms until phase or round changes."""
        self._flush()
        key = f"{previous.phase.value}|{previous.round_n if previous.round_n is not None else 'null'}"
        try:
            st = self._evaluate(WAIT_CHANGE_JS, [f"/api/games/{self.game_id}", self.token or "", key, timeout_s * 1000])
        except SiteError as e:  # the page navigated (a reload) while waiting
            log.debug("wait interrupted: %s", e)
            st = None
        return self._state_of(st) if st else self.observe()

    def _evaluate(self, js: str, arg: Any) -> Any:
        from playwright.sync_api import Error as PlaywrightError

        try:
            return self.page.evaluate(js, arg)
        except PlaywrightError as e:
            raise SiteError(f"arena page script failed: {str(e).splitlines()[0]}") from e

    def capture_views(self, round_n: int, n_views: int) -> list[bytes]:
        """PNGs of ``n_views`` headings of round ``round_n`` (whole picture, overlays hidden)."""
        self._flush()
        n_site = len(self._api("GET", f"/api/games/{self.game_id}/round")["views"])
        _, img_sel = SELECTORS.find(self.page, "panorama", self.timeout_ms, state="attached")  # shown in capture
        _, rot_sel = SELECTORS.find(self.page, "rotate_right", self.timeout_ms, state="attached")
        # the page polls: it may still show the previous round for a moment
        self.page.wait_for_function("([sel, n]) => { const i = document.querySelector(sel);"
                                    " return !!i && i.src.includes(`/rounds/${n}/views/`); }",
                                    arg=[img_sel, round_n], timeout=self.timeout_ms)
        shots = []
        self.page.evaluate("document.documentElement.classList.add('pigeon-capture')")
        try:
            for k in sorted({round(i * n_site / n_views) % n_site for i in range(n_views)}):
                box = self._view_box(img_sel, rot_sel, round_n, k, n_site)
                shots.append(self.page.screenshot(clip=box, type="png", animations="disabled", caret="hide"))
        finally:
            self.page.evaluate("document.documentElement.classList.remove('pigeon-capture')")
        return shots

    def _view_box(self, img_sel: str, rot_sel: str, round_n: int, k: int, n_site: int) -> dict:
        """The on-screen box of view ``k``, once the picture has a size: right after a view change the image
        can be laid out at 0 x 0 for a frame (seen once in 20 tournament duels), so wait a frame and ask again."""
        for _ in range(20):
            box = self.page.evaluate(SHOW_VIEW_JS, [img_sel, rot_sel, round_n, k, n_site, self.timeout_ms])
            if box["width"] >= 1 and box["height"] >= 1:
                return box
            self.page.wait_for_timeout(50)
        raise SiteError(f"view {k} of round {round_n} has no size on the page ({box})")

    def place_guess(self, round_n: int, lat_deg: float, lon_deg: float) -> PlacedGuess:
        """Pin the guess on the map; the Guess button is pressed after the belief is posted (``post_predictions``)
        or at the next call, whichever comes first."""
        from playwright.sync_api import Error as PlaywrightError

        self.fairplay.lock(round_n)  # before anything is sent: the answer to our guess may carry the truth
        try:
            placed = self._pin_on_map(round_n, lat_deg, lon_deg)
        except (SiteError, PlaywrightError, LookupError) as e:
            if not self.cfg.api_fallback:
                raise SiteError(f"placing the guess on the map failed: {str(e).splitlines()[0]}") from e
            log.warning("pinning on the map failed (%s); the guess will go through the API", str(e).splitlines()[0])
            placed = PlacedGuess(round_n, lat_deg, lon_deg, "api", lat_deg, lon_deg)
        self._pending = (round_n, lat_deg, lon_deg, placed.method)
        return placed

    def commit_guess(self, round_n: int) -> str | None:
        """Lock the guess pinned for ``round_n`` (the controller calls it after the belief went out) -> how it
        went in ("map" or "api"), None if nothing was pending; errors reach the controller's retry loop."""
        if self._pending is None or self._pending[0] != round_n:
            return None
        return self._flush()

    def _flush(self) -> str | None:
        """Lock the pinned guess: press Guess (or the API when the pin or the button failed) -> the method."""
        from playwright.sync_api import Error as PlaywrightError

        if self._pending is None:
            return None
        round_n, lat_deg, lon_deg, method = self._pending
        self._pending = None
        if method != "api":
            try:
                self._press_guess(round_n)
                return method
            except (SiteError, PlaywrightError, LookupError) as e:
                if not self.cfg.api_fallback:
                    raise SiteError(f"pressing Guess failed: {str(e).splitlines()[0]}") from e
                log.warning("Guess button failed (%s); using the API", str(e).splitlines()[0])
        self._api("POST", f"/api/games/{self.game_id}/rounds/{round_n}/guess", {"lat": lat_deg, "lon": lon_deg},
                  ok=(200, 409))
        return "api"

    def _pin_on_map(self, round_n: int, lat_deg: float, lon_deg: float) -> PlacedGuess:
        rn, _ = SELECTORS.find(self.page, "round_number", self.timeout_ms)
        rn.filter(has_text=re.compile(rf"^\s*{round_n}\s*/")).wait_for(timeout=self.timeout_ms)
        gmap, _ = SELECTORS.find(self.page, "guess_map", self.timeout_ms)
        gmap.hover()  # the map grows under the pointer (as on GeoGuessr): measure and click it grown
        self.page.wait_for_timeout(450)
        zoom = mercator.zoom_for_resolution(lat_deg, self.cfg.pin_km_per_px)
        view = gmap.evaluate("""(el, [lat, lon, z]) => {
          const m = (window.__pigeonMaps || []).find((x) => x.getContainer() === el);
          if (m) m.setView([lat, lon], z, {animate: false});
          const c = m ? m.getCenter() : {lat: 20, lng: 0};   // without the hook: the page's documented start view
          return {lat: c.lat, lon: c.lng, zoom: m ? m.getZoom() : 1, w: el.clientWidth, h: el.clientHeight,
                  x: el.getBoundingClientRect().x + el.clientLeft, y: el.getBoundingClientRect().y + el.clientTop,
                  hooked: !!m};
        }""", [lat_deg, lon_deg, zoom])
        mv = mercator.MapView(view["lat"], view["lon"], view["zoom"], view["w"], view["h"])
        x, y = (float(v) for v in mercator.latlon_to_container_px(lat_deg, lon_deg, mv))
        if not mercator.inside(x, y, mv, margin_px=2):
            raise SiteError(f"guess point ({lat_deg:.3f}, {lon_deg:.3f}) is outside the guess map view")
        self.page.mouse.click(view["x"] + x, view["y"] + y)
        plat, plon = (float(v) for v in mercator.container_px_to_latlon(round(x), round(y), mv))
        return PlacedGuess(round_n, lat_deg, lon_deg, "map" if view["hooked"] else "map-unzoomed", plat, plon)

    def _press_guess(self, round_n: int) -> None:
        button, _ = SELECTORS.find(self.page, "perform_guess", self.timeout_ms)
        with self.page.expect_response(lambda r: r.request.method == "POST" and
                                       f"/rounds/{round_n}/guess" in r.url, timeout=self.timeout_ms) as resp:
            button.click()
        status = resp.value.status
        if status == 409:
            log.warning("round %d: the arena says this player already guessed (or the round is over)", round_n)
        elif status != 200:
            raise SiteError(f"guess of round {round_n} answered HTTP {status}")

    def read_result(self, round_n: int) -> RoundResult:
        self._flush()
        if not self.fairplay.guard.is_locked(round_n):
            st = self.observe()  # a round that timed out without our guess is over: nothing left to protect
            if st.round_n == round_n and st.phase in (Phase.RESULT, Phase.FINISHED) or (st.round_n or 0) > round_n:
                self.fairplay.lock(round_n)
        self.fairplay.guard.require_locked(round_n, "the result")
        res = self._api("GET", f"/api/games/{self.game_id}/rounds/{round_n}/result")
        st = self._api("GET", f"/api/games/{self.game_id}")
        self.fairplay.arm()  # the next round stays hidden until its own guess
        mine = next((g for g in res["guesses"] if g["seat"] == st["you"]), None)
        other = next((g for g in res["guesses"] if g["seat"] != st["you"]), None)
        me = next((p for p in st["players"] if p.get("is_you")), {})
        opp = next((p for p in st["players"] if not p.get("is_you")), {})
        duel = st["mode"] != "classic"
        t = res["truth"]
        return RoundResult(
            round_n=round_n, score=mine["score"] if mine else 0, dist_km=mine["dist_km"] if mine else None,
            truth_lat_deg=t.get("lat"), truth_lon_deg=t.get("lon"), truth_country=t.get("country"),
            guess_lat_deg=mine["lat"] if mine else None, guess_lon_deg=mine["lon"] if mine else None,
            timed_out=bool(mine["timed_out"]) if mine else True, hp_own=me.get("hp") if duel else None,
            hp_opponent=opp.get("hp") if duel else None, damage=mine.get("damage") if mine and duel else None,
            multiplier=res.get("multiplier") if duel else None,
            opponent_score=other["score"] if other and duel else None)

    def next_round(self, round_n: int) -> None:
        """Press Next on the result screen (the page posts /next); the API does it when the page lags."""
        from playwright.sync_api import Error as PlaywrightError

        self._flush()
        st = self._api("GET", f"/api/games/{self.game_id}")
        me = next(p for p in st["players"] if p.get("is_you"))
        if st["status"] != "active" or st["current_round"] != round_n or me["ready_round"] >= round_n:
            return  # the game moved on (duel intermission over) or we are already ready
        # short bounds: the round may start on its own meanwhile (a duel's intermission ends, a blind game
        # advances), taking the button away; the API call below is the same request and harmless then (409)
        quick = min(self.timeout_ms, NEXT_CLICK_TIMEOUT_MS)
        try:
            btn, _ = SELECTORS.find(self.page, "close_round_result", quick)
            with self.page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/next"),
                                           timeout=quick):
                btn.click(timeout=quick)
        except (PlaywrightError, LookupError) as e:
            log.warning("Next button failed (%s); using the API", str(e).splitlines()[0])
            self._api("POST", f"/api/games/{self.game_id}/next", ok=(200, 409))

    def summary(self) -> GameSummary:
        self._flush()
        sm = self._api("GET", f"/api/games/{self.game_id}/summary")
        me = next((p for p in sm["players"] if p.get("is_you")), {})
        opp = next((p for p in sm["players"] if not p.get("is_you")), {})
        duel = sm["mode"] != "classic"
        return GameSummary(sm["id"], me.get("total_score"),
                           won=(sm["winner_seat"] == sm["you"]) if duel and not sm["draw"] else None,
                           draw=bool(sm["draw"]), hp_own=me.get("hp") if duel else None,
                           hp_opponent=opp.get("hp") if duel else None)

    def recover(self) -> None:
        self.page.goto(f"{self.base_url}/play/{self.game_id}" if self.game_id else self.base_url + "/")

    def abandon(self) -> None:
        """Give up this player's seat (``POST /api/games/{id}/abandon``), so no game is left running; sent
        beside the page (the page may be an error page after an outage). SiteError when the arena refuses."""
        if not (self.game_id and self.token):
            return
        r = self.ctx.request.post(f"{self.base_url}/api/games/{self.game_id}/abandon",
                                  headers={"X-Player-Token": self.token}, timeout=5000)
        if r.status != 200:
            raise SiteError(f"arena abandon of game {self.game_id} answered HTTP {r.status}")

    def screenshot(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def post_predictions(self, round_n: int, guess: GuessResult) -> None:
        topk = [{"lat": float(t["lat"]), "lon": float(t["lon"]), "p": min(1.0, max(0.0, float(t["p"])))}
                for t in guess.topk[:50]]
        heat = [[float(a), float(b), min(1.0, max(0.0, float(p)))] for a, b, p in guess.heat[:4096]]
        if self._pending is not None and self._pending[0] == round_n:  # the belief goes out before the lock
            self._api("POST", "/api/predictions",
                      {"game_id": self.game_id, "round": round_n, "topk": topk, "heat": heat})

    def check(self) -> dict[str, str | None]:
        """Self-test of the required hooks on the current page."""
        return SELECTORS.check(self.page)

