// Lobby page: choose a name, start a classic game, a duel or a blind duel, or join an open game.
"use strict";

(() => {
  const {api, $, el, toast} = Arena;

  function render(p) {
    $("#who-new").hidden = !!p;
    $("#who").hidden = $("#modes").hidden = $("#open-games").hidden = $("#world-pick").hidden = !p;
    if (!p) $("#my-games").hidden = true;
    if (p) $("#who-name").textContent = p.name;
  }

  async function loadWorlds() {
    try {
      const worlds = await api("GET", "/api/worlds");
      $("#world-select").replaceChildren(...worlds.map((w) => el("option", {value: w.name},
        `${w.name} · ${w.locations.toLocaleString("en-US")} places` + (w.image_size ? ` · ${w.image_size[0]} px` : ""))));
    } catch (e) { toast(e.message); }
  }

  // Games to go back to: waiting, running, or a blind game that still needs your verdict.
  async function refreshMine() {
    if (!Arena.player()) return;
    try {
      const games = await api("GET", "/api/me/games");
      $("#my-games").hidden = games.length === 0;
      $("#my-games-list").replaceChildren(...games.map((g) => el("li", {},
        el("span", {}, `${g.mode === "blind" ? "Blind duel" : g.mode === "duel" ? "Duel" : "Classic"} · ${g.world}`),
        el("span", {class: "muted"}, g.needs_verdict ? "your verdict is awaited" : g.status === "waiting" ?
          "waiting for an opponent" : `round ${g.round} / ${g.rounds}`),
        el("a", {class: "btn small", href: `/play/${g.id}`, "data-qa": "resume-game"}, g.needs_verdict ? "Give verdict" : "Resume"))));
    } catch (e) { if (e.status !== 401) toast(e.message); }
  }

  async function start(body) {
    body.world = $("#world-select").value || undefined;
    try {
      const g = await api("POST", "/api/games", body);
      location.href = `/play/${g.id}`;
    } catch (e) { toast(e.message); }
  }

  async function refreshLobby() {
    if (!Arena.player()) return;
    try {
      const games = await api("GET", "/api/lobby");
      $("#lobby-empty").hidden = games.length > 0;
      $("#lobby-list").replaceChildren(...games.map((g) => el("li", {},
        el("span", {}, g.mode === "blind" ? "Blind duel (anonymous)" : `Duel by ${g.creator}`),
        el("span", {class: "muted"}, ` · ${g.rounds} rounds max · ${g.world} · expires in ${Math.max(0, Math.round((g.expires - Date.now() / 1000) / 60))} min`),
        el("button", {class: "btn small", "data-qa": "join-lobby-game", "data-game": g.id, onclick: async () => {
          try { await api("POST", `/api/games/${g.id}/join`); location.href = `/play/${g.id}`; }
          catch (e) { toast(e.message); }
        }}, "Join"))));
    } catch (e) { if (e.status === 401) { Arena.setPlayer(null); render(null); } }
  }

  $("#name-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { render(await Arena.createPlayer($("#player-name").value.trim())); refreshLobby(); refreshMine(); }
    catch (e) { $("#name-error").textContent = e.message; }
  });
  $("#forget").addEventListener("click", () => { Arena.setPlayer(null); render(null); });
  $("#start-classic").addEventListener("click", () => {
    const timer = $("#classic-timer").value;
    start({mode: "classic", rounds: Number($("#classic-rounds").value), timer_s: timer ? Number(timer) : null});
  });
  $("#start-duel").addEventListener("click", () => start({mode: "duel",
    duel: {countdown_s: Number($("#duel-countdown").value), initial_hp: Number($("#duel-hp").value)}}));
  $("#start-blind").addEventListener("click", () => start({mode: "blind", rounds: Number($("#blind-rounds").value)}));

  Arena.validPlayer().then((p) => { render(p); refreshLobby(); refreshMine(); }).catch((e) => toast(e.message));
  loadWorlds();
  setInterval(() => { refreshLobby(); refreshMine(); }, 2000);
})();
