// Stream overlay (/overlay/<game id>): live scores/HP, the bot's top-k guesses and heat map while a round is
// open, the round result on the map once it is over. Polls GET /api/games/<id>/overlay once a second.
"use strict";

(() => {
  const {api, $, el, fmtInt, fmtKm, fmtClock} = Arena;
  const gid = location.pathname.split("/").filter(Boolean)[1];
  // the overlay key travels in the URL fragment (#key=...), which never reaches the server's logs
  const key = () => new URLSearchParams(location.hash.slice(1)).get("key") || "";
  const map = WorldMap.create($("#ov-map"), {zoomControl: false});
  const layer = L.layerGroup().addTo(map);
  let drawnKey = null, state = null, clockOffset = 0;

  function side(p, st, right) {
    if (!p) return el("div", {class: "ov-name muted"}, "waiting…");
    const kind = p.kind ? el("span", {class: "ov-kind"}, p.kind) : null;
    const name = el("div", {}, right ? kind : null, el("span", {class: "ov-name"}, p.name), right ? null : kind);
    if (st.mode === "classic") return el("div", {}, name, el("div", {class: "ov-points"}, fmtInt(p.total_score)));
    const pct = (100 * p.hp) / (st.initial_hp || 1);
    return el("div", {}, name, el("div", {class: "hp-bar"}, el("div", {class: "hp-fill", style: `width:${pct}%`})),
      el("div", {class: "ov-points", "data-qa": `overlay-hp-${p.seat}`}, `${fmtInt(p.hp)} HP`));
  }

  function heatColor(t) {  // t in [0, 1]: yellow -> red
    return `rgb(${Math.round(254 - 22 * t)}, ${Math.round(205 - 150 * t)}, ${Math.round(25 + 90 * t)})`;
  }

  function drawPredictions(st) {
    const preds = st.predictions;
    const box = $("#ov-topk");
    box.hidden = !preds.length;
    const bounds = [];
    for (const pr of preds) {
      const pmax = Math.max(...pr.heat.map((h) => h[2]), 1e-9);
      for (const [lat, lon, p] of pr.heat) {
        const t = p / pmax;
        L.circleMarker([lat, lon], {radius: 3 + 11 * Math.sqrt(t), stroke: false, fillColor: heatColor(t),
          fillOpacity: 0.2 + 0.55 * t, className: "heat-dot", interactive: false}).addTo(layer);
      }
      pr.topk.forEach((g, i) => {
        L.marker([g.lat, g.lon], {icon: WorldMap.pinIcon(WorldMap.COLORS[1], String(i + 1))}).addTo(layer);
        bounds.push([g.lat, g.lon]);
      });
    }
    if (preds.length) {
      const pr = preds[0];
      box.replaceChildren(el("h3", {}, `${pr.name}: top guesses`), ...pr.topk.slice(0, 5).map((g, i) =>
        el("div", {class: "row"}, el("b", {}, String(i + 1)), el("div", {class: "bar", style: `width:${Math.max(4, 100 * g.p)}%`}),
          el("span", {}, `${(100 * g.p).toFixed(1)}%`))));
    }
    if (bounds.length) WorldMap.fit(map, L.latLngBounds(bounds), 4); else map.setView([20, 0], 1);
  }

  function drawResult(st, res) {
    const guesses = res.guesses.map((g) => ({...g, label: String(g.seat + 1)}));
    WorldMap.fit(map, WorldMap.drawResult(layer, res.truth, guesses), 5);
    $("#ov-topk").hidden = true;
    $("#ov-result").replaceChildren(...res.guesses.map((g) => {
      const p = st.players.find((q) => q.seat === g.seat);
      return el("div", {}, el("span", {}, p.name), el("span", {}, g.timed_out ? "no guess" : fmtKm(g.dist_km)),
        el("b", {}, `${fmtInt(g.score)} pts`), g.damage ? el("span", {class: "damage"}, `−${fmtInt(g.damage)} HP`) : null);
    }));
  }

  function render(st) {
    const [p0, p1] = [0, 1].map((s) => st.players.find((p) => p.seat === s));
    $("#ov-left").replaceChildren(side(p0, st, false));
    $("#ov-right").replaceChildren(st.mode === "classic" ? "" : side(p1, st, true));
    const r = st.round;
    $("#ov-round").textContent = r ? `Round ${r.n} / ${st.rounds_total}` + (st.mode === "classic" ? "" : ` · ×${r.multiplier}`) :
      st.status === "waiting" ? "Waiting for players" : "";
    const key = `${st.version}`;
    if (key === drawnKey) return;
    drawnKey = key;
    layer.clearLayers();
    $("#ov-result").replaceChildren();
    if (!r) { $("#ov-map-title").textContent = "Waiting for players"; return; }
    if (r.closed) {
      $("#ov-map-title").textContent = st.status === "finished" ? `Final round ${r.n} result` : `Round ${r.n} result`;
      drawResult(st, r.result);
    } else {
      $("#ov-map-title").textContent = st.predictions.length ? `Round ${r.n}: bot's belief` : `Round ${r.n}: guessing…`;
      drawPredictions(st);
    }
  }

  function tick() {
    const t = $("#ov-timer");
    const r = state && state.round;
    if (!r || r.closed || r.deadline === null) { t.textContent = ""; return; }
    const left = r.deadline - (Date.now() / 1000 + clockOffset);
    t.textContent = fmtClock(left);
    t.classList.toggle("urgent", left < 10);
  }

  async function poll() {
    try {
      state = await api("GET", `/api/games/${gid}/overlay`, undefined, {"X-Overlay-Key": key()});
      clockOffset = state.server_time - Date.now() / 1000;
      render(state);
    } catch (e) { $("#ov-round").textContent = e.status === 404 ? "game not found" : "reconnecting…"; }
    setTimeout(poll, 1000);
  }
  // Chat vs bot (arena/chat.py): the viewers' leaderboard and, once a round is over, their guesses on the map.
  const chatLayer = L.layerGroup().addTo(map);
  let chatKey = null;
  function renderChat(board) {
    const box = $("#ov-chat");
    box.hidden = false;
    const r = state && state.round;
    const last = board.rounds.length ? board.rounds[board.rounds.length - 1] : null;
    const head = board.open_round ? `Round ${board.open_round}: ${fmtInt(board.open_round_guesses)} guesses in` :
      last ? `Round ${last.n}: ${fmtInt(last.guesses.length)} guesses` : "Type !g lat, lon or !g country";
    const best = last && r && r.closed && r.n === last.n ? last.guesses.slice(0, 3) : [];
    box.replaceChildren(el("h3", {}, "Chat vs bot"), el("div", {class: "ov-chat-head", "data-qa": "overlay-chat-round"}, head),
      ...board.leaderboard.slice(0, 8).map((v, i) => el("div", {class: "row"}, el("b", {}, String(i + 1)),
        el("span", {class: "viewer"}, v.viewer), el("span", {}, `${fmtInt(v.score)}`))),
      ...(best.length ? [el("div", {class: "ov-chat-best"}, "Best this round: " +
        best.map((g) => `${g.viewer} ${fmtKm(g.dist_km)}`).join(" · "))] : []));
    const k = `${state ? state.version : ""}|${last ? last.n + ":" + last.guesses.length : ""}`;
    if (k === chatKey) return;
    chatKey = k;
    chatLayer.clearLayers();
    if (best.length || (last && r && r.closed && r.n === last.n)) {
      for (const g of last.guesses.slice(0, 200)) {
        if (g.lat === null) continue;
        L.circleMarker([g.lat, g.lon], {radius: 4, color: "#1d4ed8", weight: 1, fillColor: "#93c5fd", fillOpacity: 0.8,
          interactive: false, className: "chat-dot"}).addTo(chatLayer);
      }
    }
  }
  async function pollChat() {
    try { renderChat(await api("GET", `/api/games/${gid}/chat`, undefined, {"X-Overlay-Key": key()})); }
    catch (e) { /* no chat: the panel stays hidden */ }
    setTimeout(pollChat, 2000);
  }
  setInterval(tick, 250);
  poll();
  pollChat();
})();
