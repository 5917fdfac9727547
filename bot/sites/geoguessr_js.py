"""Page-side scripts of the geoguessr.com adapter (kept apart so the adapter reads as Python).

``HOOK_SCRIPT`` runs before the site's own scripts (a Playwright init script): it subclasses
``google.maps.StreetViewPanorama`` and ``google.maps.Map`` the moment the Maps API appears, keeping the instances
so the bot can set the panorama's heading exactly and centre/zoom the guess map (the route of public userscripts
such as GeoClassics and extenssr; docs/bot.md, "How a round is played"). It reads nothing from them but POV,
centre and zoom.
"""

HOOK_SCRIPT = r"""
(() => {
  if (window.__pigeonHook) return;
  window.__pigeonHook = {sv: null, maps: [], installed: false};
  const h = window.__pigeonHook;
  const tryInstall = () => {
    const g = window.google && window.google.maps;
    if (h.installed || !g || !g.StreetViewPanorama || !g.Map) return h.installed;
    const SV = g.StreetViewPanorama, M = g.Map;
    g.StreetViewPanorama = class extends SV { constructor(...a) { super(...a); h.sv = this; } };
    g.Map = class extends M { constructor(...a) { super(...a); h.maps.push(this); } };
    h.installed = true;
    return true;
  };
  // 1) the page assigns window.google: hook at once; 2) the loader fills google.maps later: watch the DOM
  //    (script insertions) and animation frames until the classes exist.
  let current = window.google;
  try {
    Object.defineProperty(window, "google", {configurable: true, enumerable: true,
      get() { return current; }, set(v) { current = v; tryInstall(); }});
  } catch (e) { /* already defined by someone else: the observer below still works */ }
  const obs = new MutationObserver(() => { if (tryInstall()) obs.disconnect(); });
  obs.observe(document, {childList: true, subtree: true});
  const t0 = performance.now();
  const poll = () => { if (!tryInstall() && performance.now() - t0 < 60000) requestAnimationFrame(poll); };
  requestAnimationFrame(poll);
})();
"""

# One observation: the game-state JSON (fetched by the page, so it passes the fair-play filter) and what the DOM
# shows. ``sig`` ignores the ticking timer, so "the state changed" means phase, round or guesses changed. The
# adapter paces these calls itself (at most one request per ``min_request_interval_s``); nothing here loops.
SNAPSHOT_FN = r"""
async function pigeonSnapshot(a) {
  const csrf = (document.cookie.match(/(?:^|; )_csrf=([^;]*)/) || [])[1];
  let api;
  try {
    const r = await fetch(a.apiUrl, {credentials: "include", headers: csrf ? {"x-csrf-token": csrf} : {}});
    api = r.ok ? await r.json() : {__status: r.status};
  } catch (e) { api = {__status: 0, __error: String(e)}; }
  const first = (sels, visible) => {
    for (const s of sels) {
      let e = null;
      try { e = document.querySelector(s); } catch (err) { continue; }  // Playwright-only syntax (:has-text)
      if (e && (!visible || (e.checkVisibility ? e.checkVisibility() : e.offsetParent !== null))) return e;
    }
    return null;
  };
  const all = (sels) => { for (const s of sels) { try { const l = document.querySelectorAll(s); if (l.length) return [...l]; } catch (e) {} } return []; };
  const round = first(a.sel.round_number, true), timer = first(a.sel.round_timer, true);
  const dom = {result: !!first(a.sel.result_layout, true), finished: !!first(a.sel.game_finished, true),
               round: round ? round.textContent : null, timer: timer ? timer.textContent : null,
               hp: all(a.sel.hp_labels).map((e) => e.textContent)};
  const teams = (api.teams || []).map((t) => [t.roundResults ? t.roundResults.length : 0,
    (t.players || []).map((p) => (p.guesses || []).length)]);
  const sig = JSON.stringify([dom.result, dom.finished, dom.round, api.__status || 0, api.round, api.state,
    api.player ? (api.player.guesses || []).length : null, api.status, api.currentRoundNumber, teams]);
  return {api, dom, sig, now: Date.now()};
}
"""
SNAPSHOT_JS = "async (a) => { " + SNAPSHOT_FN + " return await pigeonSnapshot(a); }"

# Set the hooked panorama's heading (and zoom 0 where zooming is allowed), then wait for the loading spinner to go, two frames and the tile delay.
SET_HEADING_JS = r"""async ([heading, spinnerSels, settleMs, timeoutMs, allowZoom]) => {
  const sv = window.__pigeonHook && window.__pigeonHook.sv;
  if (!sv) throw new Error("the Street View panorama is not hooked");
  sv.setPov({heading, pitch: 0});
  if (allowZoom && sv.setZoom) sv.setZoom(0);  // NZ games: never touch the zoom
  const end = performance.now() + timeoutMs;
  const spinning = () => spinnerSels.some((s) => { const e = document.querySelector(s);
    return e && (e.checkVisibility ? e.checkVisibility() : e.offsetParent !== null); });
  while (spinning()) {
    if (performance.now() > end) throw new Error("the panorama kept loading");
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
  return sv.getPov().heading;
}"""

START_HEADING_JS = r"""() => { const h = window.__pigeonHook; return h && h.sv ? h.sv.getPov().heading : null; }"""

# Centre and zoom the hooked guess map that lives in (or contains) ``el``; report the view for the projection.
MAP_VIEW_JS = r"""(el, [lat, lng, zoom]) => {
  const h = window.__pigeonHook;
  const m = h && h.maps.slice().reverse().find((x) => { const d = x.getDiv(); return d === el || d.contains(el) || el.contains(d); });
  if (!m) return null;
  m.setCenter({lat, lng});
  m.setZoom(zoom);
  const d = m.getDiv(), r = d.getBoundingClientRect(), c = m.getCenter();
  const num = (o, k) => (typeof o[k] === "function" ? o[k]() : o[k]);  // google.maps.LatLng has lat(), lng()
  return {lat: num(c, "lat"), lng: num(c, "lng"), zoom: m.getZoom(), w: d.clientWidth, h: d.clientHeight,
          x: r.x + d.clientLeft, y: r.y + d.clientTop};
}"""

# Wait until an element's size stops changing (the guess map grows on hover) -- two equal frames, bounded.
SETTLED_SIZE_JS = r"""async ([el, timeoutMs]) => {
  const end = performance.now() + timeoutMs;
  let last = "";
  for (;;) {
    await new Promise((r) => requestAnimationFrame(r));
    const r = el.getBoundingClientRect(), now = `${r.width}x${r.height}`;
    if (now === last || performance.now() > end) return now;
    last = now;
  }
}"""

API_JS = r"""async ([method, url, body]) => {
  const csrf = (document.cookie.match(/(?:^|; )_csrf=([^;]*)/) || [])[1];
  const headers = {"Content-Type": "application/json"};
  if (csrf) headers["x-csrf-token"] = csrf;
  const r = await fetch(url, {method, credentials: "include", headers, body: body === null ? undefined : JSON.stringify(body)});
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text.slice(0, 200); }
  return {status: r.status, body: data};
}"""


def capture_css(hide: list[str]) -> str:
    """CSS that hides ``hide`` selectors while ``html.pigeon-capture`` is set."""
    rules = ", ".join(f"html.pigeon-capture {s}" for s in hide)
    return f"{rules} {{ visibility: hidden !important; }}"
