// The game page (/play/<game id>): panorama, guess map, round result, summary; classic and duels.
// The server is the source of truth: the page polls GET /api/games/<id> and renders whatever state it gets.
"use strict";

(() => {
  const {api, $, el, fmtInt, fmtKm, fmtClock, toast} = Arena;
  const gid = location.pathname.split("/").filter(Boolean)[1];
  const regionNames = new Intl.DisplayNames(["en"], {type: "region"});
  const ui = {
    state: null, screen: null, roundKey: null, view: 0, pin: null, pinMarker: null, guessMap: null,
    pan: 0, zoom: 1, panY: 0, tiles: [], mapPinned: false,
    resultMap: null, resultLayer: null, resultKey: null, summaryMap: null, summaryShown: false,
    ackFinished: false, clockOffset: 0, submitting: false, nextPending: false, pollTimer: null, autoGuessed: null,
  };

  function show(name) {
    for (const s of document.querySelectorAll(".screen")) s.hidden = s.id !== `screen-${name}`;
    ui.screen = name;
  }

  // ---- polling ----------------------------------------------------------------------------------------------
  async function poll() {
    clearTimeout(ui.pollTimer);
    try {
      apply(await api("GET", `/api/games/${gid}`));
    } catch (e) {
      if (e.status === 404 || e.status === 422) { showMessage("Game not found", "Check the link, or start a new game."); return; }
      toast(e.message);
    }
    if (!(ui.state && ui.state.status === "finished" && ui.summaryShown)) ui.pollTimer = setTimeout(poll, 700);
  }

  function apply(st) {
    ui.clockOffset = st.server_time - Date.now() / 1000;
    if (ui.state === null && st.status === "finished") ui.ackFinished = true;  // opened after the end
    ui.state = st;
    if (st.you === null) return st.status === "waiting" ? showJoin(st) : showMessage(
      "Game in progress", "You are not a player in this game.");
    if (st.status === "waiting") return showWaiting(st);
    if (st.status === "finished" && st.ended && !st.round) return showMessage("Game over", endedText(st.ended));
    if (st.status === "finished" && ui.ackFinished && st.needs_verdict) return showVerdict(st);
    if (st.status === "finished" && ui.ackFinished) return showSummary(st);
    if (st.round.closed) return showResult(st);
    return showRound(st);
  }

  // ---- join / waiting ---------------------------------------------------------------------------------------
  function showMessage(title, text) {
    show("join");
    $("#join-text").textContent = `${title}. ${text}`;
    $("#join-form").hidden = true;
  }

  function showJoin(st) {
    if (ui.screen === "join") return;
    show("join");
    const p = Arena.player();
    $("#join-text").textContent = st.mode === "blind" ? "A blind duel is waiting for an opponent." :
      `${st.players[0].name} invites you to a duel.`;
    $("#join-name").hidden = !!p;
    $("#join-form").onsubmit = async (ev) => {
      ev.preventDefault();
      try {
        if (!Arena.player()) await Arena.createPlayer($("#join-name").value.trim() || "Player");
        apply(await api("POST", `/api/games/${gid}/join`));
      } catch (e) { $("#join-error").textContent = e.message; }
    };
  }

  function endedText(why) {
    return {cancelled: "This game was cancelled.", expired: "Nobody joined in time; the game expired.",
      abandoned: "A player left; the game ended without a winner and was not rated."}[why] || "";
  }

  function showWaiting(st) {
    show("waiting");
    $("#cancel-btn").onclick = async () => {
      try { await api("POST", `/api/games/${gid}/cancel`); location.href = "/"; } catch (e) { toast(e.message); }
    };
    const blind = st.mode === "blind";
    $("#waiting-title").textContent = blind ? "Finding an opponent…" : "Waiting for an opponent…";
    $("#waiting-text").textContent = blind ? "Your anonymous opponent will join shortly." :
      "Share this link with your opponent:";
    $("#share-link").hidden = blind;
    $("#share-link").value = location.href;
  }

  // ---- HUD --------------------------------------------------------------------------------------------------
  const own = (st) => st.players.find((p) => p.seat === st.you);
  const opponent = (st) => st.players.find((p) => p.seat !== st.you);

  function renderHud(st) {
    const r = st.round;
    $("#round-number").textContent = `${r.n} / ${st.rounds_total}`;
    $("#hud-world").textContent = st.world;
    $("#total-score").textContent = fmtInt(own(st).total_score);
    const duel = st.mode !== "classic";
    $("#duel-hud").hidden = !duel;
    $("#hud-score-box").hidden = duel;
    if (duel) renderHp(st);
  }

  function renderHp(st) {
    const me = own(st), op = opponent(st);
    const hp0 = Math.max(me.hp, op ? op.hp : 0, 1);
    const full = st.initial_hp || hp0;
    $("#own-name").textContent = me.name;
    $("#own-hp").textContent = fmtInt(me.hp);
    $("#own-hp-fill").style.width = `${(100 * me.hp) / Math.max(full, hp0)}%`;
    $("#opp-name").textContent = op ? op.name : "Opponent";
    $("#opp-hp").textContent = op ? fmtInt(op.hp) : "–";
    $("#opp-hp-fill").style.width = op ? `${(100 * op.hp) / Math.max(full, hp0)}%` : "0%";
    $("#multiplier").textContent = `×${st.round.multiplier}`;
  }

  function tickTimer() {
    const st = ui.state;
    const t = $("#timer");
    if (!st || !st.round || st.round.closed || st.round.deadline === null || ui.screen !== "game") { t.hidden = true; return; }
    const left = st.round.deadline - (Date.now() / 1000 + ui.clockOffset);
    t.hidden = false;
    t.textContent = fmtClock(left);
    t.classList.toggle("urgent", left < 10);
    if (left <= 0 && ui.pin && !st.round.your_guess && ui.autoGuessed !== st.round.n) {
      ui.autoGuessed = st.round.n;  // time is up: the pin on the map is the guess, as in GeoGuessr
      submitGuess();
    }
  }

  // ---- round: panorama + guess map ------------------------------------------------------------------------------
  function ensureGuessMap() {
    if (ui.guessMap) return;
    ui.guessMap = WorldMap.create($("#guess-map"), {labels: true});
    for (const ev of ["mousedown", "wheel", "touchstart"]) {
      $("#guess-map").addEventListener(ev, () => { ui.mapTouched = true; }, {passive: true});
    }
    ui.guessMap.on("click", (e) => {
      const r = ui.state && ui.state.round;
      if (!r || r.your_guess || r.closed) return;
      ui.pin = e.latlng.wrap();
      if (!ui.pinMarker) ui.pinMarker = L.marker(e.latlng, {icon: WorldMap.pinIcon(WorldMap.COLORS[0])}).addTo(ui.guessMap);
      ui.pinMarker.setLatLng(e.latlng);
      updateGuessButton();
    });
  }

  function updateGuessButton() {
    const r = ui.state.round, b = $("#guess-btn");
    b.disabled = !ui.pin || !!r.your_guess || ui.submitting;
    b.textContent = r.your_guess ? "Guessed" : ui.submitting ? "Guessing…" : ui.pin ? "Guess" : "Place your pin on the map";
  }

  function showRound(st) {
    const r = st.round;
    if (ui.screen !== "game") { show("game"); ensureGuessMap(); ui.guessMap.invalidateSize(); }
    if (ui.roundKey !== `${r.n}`) {
      ui.roundKey = `${r.n}`;
      ui.view = 0; ui.pin = null; ui.submitting = false; ui.nextPending = false;
      if (ui.pinMarker) { ui.pinMarker.remove(); ui.pinMarker = null; }
      ui.guessMap.setView([20, 0], 1);
      ui.mapTouched = false;
      buildStrip(r.views);
      renderView();
    }
    renderHud(st);
    const banner = $("#banner");
    const opGuessed = st.mode !== "classic" && r.guessed_seats.some((s) => s !== st.you);
    banner.hidden = !(r.your_guess || opGuessed);
    banner.textContent = r.your_guess ? "Guess locked in. Waiting for your opponent…" : "Your opponent has guessed!";
    updateGuessButton();
    tickTimer();
  }

  // ---- panorama: the headings side by side in one strip, shown whole (height fits), panned continuously ----
  // ui.pan is the strip offset in units of one heading (0..n), ui.zoom scales the strip, ui.panY moves it
  // vertically when zoomed. Three copies of the strip make the wrap-around seamless.
  function buildStrip(views) {
    const strip = $("#pano-strip");
    ui.tiles = [];
    const imgs = [];
    for (let copy = 0; copy < 3; copy++) for (const v of views) {
      const im = el("img", {src: v.url, alt: "", draggable: "false", class: "pano-tile"});
      imgs.push(im);
      if (copy === 1) ui.tiles.push(im);
    }
    strip.replaceChildren(...imgs);
    ui.pan = 0; ui.zoom = 1; ui.panY = 0;
    for (const im of imgs) im.addEventListener("load", layoutStrip, {once: true});
    layoutStrip();
  }

  function tileSize() {
    const box = $("#panorama").getBoundingClientRect(), im = ui.tiles[0];
    const ratio = im && im.naturalWidth ? im.naturalWidth / im.naturalHeight : 1;
    const h = box.height * ui.zoom;
    return {w: h * ratio, h, box};
  }

  function layoutStrip() {
    if (!ui.state || !ui.state.round) return;
    const n = ui.state.round.views.length, {w, h, box} = tileSize();
    ui.pan = ((ui.pan % n) + n) % n;
    const maxY = Math.max(0, (h - box.height) / 2);
    ui.panY = Math.max(-maxY, Math.min(maxY, ui.panY));
    // the centre of the viewport looks at heading position ui.pan (+0.5: the middle of that tile)
    const x = box.width / 2 - (n + ui.pan + 0.5) * w;
    const strip = $("#pano-strip");
    strip.style.height = `${h}px`;
    strip.style.transform = `translate(${x}px, ${(box.height - h) / 2 + ui.panY}px)`;
    for (const im of strip.children) { im.style.width = `${w}px`; im.style.height = `${h}px`; }
    const k = Math.round(ui.pan) % n;
    if (k !== ui.view) { ui.view = k; renderView(); } else renderCompass();
  }

  function renderView() {
    const views = ui.state.round.views, v = views[ui.view];
    $("#pano-img").src = v.url;
    $("#pano-img").dataset.view = String(ui.view);
    $("#panorama").dataset.view = String(ui.view);
    const dots = $("#view-dots");
    dots.replaceChildren(...views.map((_, i) => el("span", {class: i === ui.view ? "dot on" : "dot"})));
    renderCompass();
  }

  function renderCompass() {
    const views = ui.state.round.views, n = views.length;
    const h0 = views[0].heading_deg;
    const step = 360 / n;
    const h = h0 === null ? null : Math.round(((h0 + ui.pan * step) % 360 + 360) % 360);
    const names = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
    $("#compass-text").replaceChildren(...(h === null ? [el("b", {}, `${ui.view + 1}/${n}`)] :
      [el("b", {}, names[Math.round(h / 45) % 8]), el("small", {}, `${h}°`)]));
    $("#compass-needle").style.transform = `rotate(${h === null ? -ui.pan * step : -h}deg)`;
  }

  // One heading per press, animated; snaps to a whole heading so the bot's capture sees view k exactly.
  function rotate(step) {
    if (!ui.state || !ui.state.round) return;
    const n = ui.state.round.views.length;
    const target = Math.round(ui.pan) + step;
    ui.view = ((target % n) + n) % n;
    ui.pan = target;
    renderView();
    layoutStrip();
  }

  function zoomBy(f) {
    ui.zoom = Math.max(1, Math.min(4, ui.zoom * f));
    layoutStrip();
  }

  async function submitGuess() {
    const r = ui.state && ui.state.round;
    if (!r || !ui.pin || ui.submitting || r.your_guess || r.closed) return;
    ui.submitting = true;
    updateGuessButton();
    try {
      apply(await api("POST", `/api/games/${gid}/rounds/${r.n}/guess`, {lat: ui.pin.lat, lon: ui.pin.lng}));
    } catch (e) {
      toast(e.message);
      ui.submitting = false;
      poll();
    }
  }

  // Dragging pans continuously (sideways across headings, up/down when zoomed); the wheel zooms.
  function setupDrag() {
    const pano = $("#panorama");
    let last = null;
    pano.addEventListener("pointerdown", (e) => { last = [e.clientX, e.clientY]; pano.setPointerCapture(e.pointerId); });
    pano.addEventListener("pointermove", (e) => {
      if (last === null) return;
      const {w} = tileSize();
      ui.pan -= (e.clientX - last[0]) / w;
      ui.panY += e.clientY - last[1];
      last = [e.clientX, e.clientY];
      layoutStrip();
    });
    const end = () => { last = null; };
    pano.addEventListener("pointerup", end);
    pano.addEventListener("pointercancel", end);
    pano.addEventListener("wheel", (e) => { e.preventDefault(); zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15); }, {passive: false});
    window.addEventListener("resize", layoutStrip);
  }

  // The guess map grows while the pointer is over it (or while pinned large), like GeoGuessr's.
  function setupGuessPanel() {
    const panel = $("#guess-panel");
    const resize = () => {
      if (!ui.guessMap) return;
      clearTimeout(ui.resizeTimer);
      ui.resizeTimer = setTimeout(() => {
        ui.guessMap.invalidateSize();
        // an untouched map keeps its documented start view (20° N 0° E, zoom 1) at every size
        if (!ui.mapTouched) ui.guessMap.setView([20, 0], 1, {animate: false});
      }, 230);
    };
    panel.addEventListener("mouseenter", () => { panel.classList.add("grown"); resize(); });
    panel.addEventListener("mouseleave", () => { if (!ui.mapPinned) { panel.classList.remove("grown"); resize(); } });
    const pin = () => {
      ui.mapPinned = !ui.mapPinned;
      panel.classList.toggle("pinned", ui.mapPinned);
      panel.classList.toggle("grown", ui.mapPinned);
      $("#map-pin").setAttribute("aria-pressed", String(ui.mapPinned));
      resize();
    };
    $("#map-pin").addEventListener("click", pin);
    return pin;
  }

  // ---- result -------------------------------------------------------------------------------------------------
  function labelFor(st, seat) { return st.mode === "classic" ? "" : seat === st.you ? "You" : "Opp"; }

  function showResult(st) {
    const r = st.round, res = r.result;
    if (ui.screen !== "result") {
      show("result");
      if (!ui.resultMap) { ui.resultMap = WorldMap.create($("#result-map"), {labels: true}); ui.resultLayer = L.layerGroup().addTo(ui.resultMap); }
    }
    const key = `${r.n}`;
    if (ui.resultKey !== key) {
      ui.resultKey = key;
      ui.resultLayer.clearLayers();
      const guesses = res.guesses.map((g) => ({...g, label: labelFor(st, g.seat)}));
      WorldMap.fit(ui.resultMap, WorldMap.drawResult(ui.resultLayer, res.truth, guesses));
      const mine = res.guesses.find((g) => g.seat === st.you);
      $("#result-score").textContent = `${fmtInt(mine.score)} ${mine.score === 1 ? "point" : "points"}`;
      $("#result-progress").style.width = `${(100 * mine.score) / 5000}%`;
      $("#result-distance").textContent = mine.timed_out ? "Time ran out before you guessed." :
        `Your guess was ${fmtKm(mine.dist_km)} from the correct location.`;
      const cc = res.truth.country;
      const where = [res.truth.town, cc ? (regionNames.of(cc) || cc) : null].filter(Boolean).join(", ");
      $("#result-where").textContent = where ? `The location: ${where}` : "";
      renderDuelResult(st, res);
    }
    renderNextButton(st);
  }

  function renderDuelResult(st, res) {
    const box = $("#duel-result");
    box.hidden = st.mode === "classic";
    if (box.hidden) return;
    const rows = res.guesses.map((g) => {
      const p = st.players.find((q) => q.seat === g.seat);
      return el("tr", {class: g.seat === st.you ? "me" : ""}, el("td", {}, p.name),
        el("td", {}, g.timed_out ? "no guess" : fmtKm(g.dist_km)), el("td", {}, fmtInt(g.score)),
        el("td", {class: g.damage ? "damage" : ""}, g.damage ? `−${fmtInt(g.damage)} HP` : ""),
        el("td", {"data-qa": g.seat === st.you ? "result-hp-own" : "result-hp-opponent"}, `${fmtInt(p.hp)} HP`));
    });
    box.replaceChildren(el("div", {class: "muted"}, `Damage multiplier ×${res.multiplier}`),
      el("table", {class: "table"}, el("tbody", {}, ...rows)));
  }

  function renderNextButton(st) {
    const b = $("#next-btn"), note = $("#next-note");
    note.textContent = "";
    if (st.status === "finished") { b.textContent = "View summary"; b.disabled = false; return; }
    const ready = own(st).ready_round >= st.round.n;
    b.textContent = "Next round";
    b.disabled = ui.nextPending || (st.mode !== "classic" && ready);
    if (st.mode !== "classic") note.textContent = ready ? "Waiting for your opponent…" : "The next round starts soon.";
  }

  async function nextRound() {
    const st = ui.state;
    if (!st || ui.screen !== "result" || ui.nextPending) return;
    if (st.status === "finished") { ui.ackFinished = true; apply(st); return; }
    ui.nextPending = true;
    renderNextButton(st);
    try { apply(await api("POST", `/api/games/${gid}/next`)); } catch (e) { toast(e.message); }
    ui.nextPending = false;
    if (ui.screen === "result") renderNextButton(ui.state);
  }

  // ---- blind verdict --------------------------------------------------------------------------------------------
  function showVerdict(st) {
    if (ui.screen === "verdict") return;
    show("verdict");
    $("#verdict-score").textContent = st.draw ? "Draw" : st.winner_seat === st.you ? "You won!" : "You lost";
    const send = async (v) => {
      try { apply(await api("POST", `/api/games/${gid}/verdict`, {verdict: v})); }
      catch (e) { toast(e.message); }
    };
    $("#verdict-human").onclick = () => send("human");
    $("#verdict-bot").onclick = () => send("bot");
  }

  // ---- summary ------------------------------------------------------------------------------------------------
  async function showSummary(st) {
    if (ui.summaryShown) return;
    ui.summaryShown = true;
    show("summary");
    const sm = await api("GET", `/api/games/${gid}/summary`);
    renderSummaryTable(sm);  // first, so the map is fitted to its final size
    ui.summaryMap = WorldMap.create($("#summary-map"));
    const layer = L.layerGroup().addTo(ui.summaryMap);
    let bounds = null;
    for (const r of sm.rounds) {
      const b = WorldMap.drawResult(layer, r.truth, r.guesses.map((g) => ({...g, label: String(r.n)})));
      bounds = bounds ? bounds.extend(b) : b;
    }
    if (bounds) WorldMap.fit(ui.summaryMap, bounds, 4);
  }

  function renderReveal(sm) {
    const box = $("#reveal"), rv = sm.reveal;
    box.hidden = !(sm.mode === "blind" && rv && rv.opponent_kind);
    if (box.hidden) return;
    const who = rv.opponent_kind === "bot" ? "the bot" : "a person";
    const verdict = rv.your_verdict === null ? "" : rv.correct ? " You were right." : " You guessed wrong.";
    box.textContent = `Your opponent was ${who}.${verdict}`;
  }

  function renderSummaryTable(sm) {
    renderReveal(sm);
    const me = sm.players.find((p) => p.seat === sm.you);
    const duel = sm.mode !== "classic";
    $("#summary-title").textContent = !duel ? "Game over" : sm.draw ? "Draw" :
      sm.winner_seat === sm.you ? "You won!" : "You lost";
    $("#summary-total").textContent = duel ? sm.players.map((p) => `${p.name}: ${fmtInt(p.hp)} HP`).join("   ·   ") :
      `${fmtInt(me.total_score)} / ${fmtInt(5000 * sm.rounds_total)} points`;
    const head = el("tr", {}, el("th", {}, "Round"), ...sm.players.flatMap((p) => [
      el("th", {}, duel ? `${p.name} distance` : "Distance"), el("th", {}, duel ? `${p.name} score` : "Score")]));
    const rows = sm.rounds.map((r) => el("tr", {}, el("td", {}, String(r.n)), ...sm.players.flatMap((p) => {
      const g = r.guesses.find((x) => x.seat === p.seat);
      return [el("td", {}, g.timed_out ? "no guess" : fmtKm(g.dist_km)), el("td", {}, fmtInt(g.score))];
    })));
    const total = el("tr", {class: "total"}, el("td", {}, "Total"), ...sm.players.flatMap((p) => [
      el("td", {}, ""), el("td", {}, fmtInt(p.total_score))]));
    $("#summary-table").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows, total));
    $("#play-again").onclick = async () => {
      if (duel) { location.href = "/"; return; }
      const g = await api("POST", "/api/games", {mode: "classic", rounds: sm.rounds_total, timer_s: sm.timer_s, world: sm.world});
      location.href = `/play/${g.id}`;
    };
  }

  // ---- wiring -------------------------------------------------------------------------------------------------
  const toggleMap = setupGuessPanel();
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement) return;
    if (ui.screen === "game") {
      if (e.key === "ArrowLeft") { e.preventDefault(); rotate(-1); }
      else if (e.key === "ArrowRight") { e.preventDefault(); rotate(1); }
      else if (e.key === "+" || e.key === "=") { e.preventDefault(); zoomBy(1.25); }
      else if (e.key === "-") { e.preventDefault(); zoomBy(1 / 1.25); }
      else if (e.key === "m" || e.key === "M") { e.preventDefault(); toggleMap(); }
      else if (e.code === "Space") { e.preventDefault(); if (!e.repeat) submitGuess(); }
    } else if (ui.screen === "result" && e.code === "Space") {
      e.preventDefault();
      if (!e.repeat) nextRound();
    }
  });
  $("#rotate-left").addEventListener("click", () => rotate(-1));
  $("#rotate-right").addEventListener("click", () => rotate(1));
  $("#zoom-in").addEventListener("click", () => zoomBy(1.25));
  $("#zoom-out").addEventListener("click", () => zoomBy(1 / 1.25));
  $("#guess-btn").addEventListener("click", submitGuess);
  $("#next-btn").addEventListener("click", nextRound);
  setupDrag();
  setInterval(tickTimer, 250);
  Arena.validPlayer().catch(() => null).finally(poll);
})();
