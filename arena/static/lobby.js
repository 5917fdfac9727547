// Lobby page: choose a name, start a classic game, a duel or a blind duel, or join an open game.
"use strict";

(() => {
  const {api, $, el, toast} = Arena;

  function render(p) {
    $("#who-new").hidden = !!p;
    $("#who").hidden = $("#modes").hidden = $("#open-games").hidden = !p;
    if (p) $("#who-name").textContent = p.name;
  }

  async function start(body) {
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
        el("span", {class: "muted"}, ` · ${g.rounds} rounds max · ${g.world}`),
        el("button", {class: "btn small", "data-qa": "join-lobby-game", "data-game": g.id, onclick: async () => {
          try { await api("POST", `/api/games/${g.id}/join`); location.href = `/play/${g.id}`; }
          catch (e) { toast(e.message); }
        }}, "Join"))));
    } catch (e) { if (e.status === 401) { Arena.setPlayer(null); render(null); } }
  }

  $("#name-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { render(await Arena.createPlayer($("#player-name").value.trim())); refreshLobby(); }
    catch (e) { $("#name-error").textContent = e.message; }
  });
  $("#forget").addEventListener("click", () => { Arena.setPlayer(null); render(null); });
  $("#start-classic").addEventListener("click", () => {
    const timer = $("#classic-timer").value;
    start({mode: "classic", rounds: Number($("#classic-rounds").value), timer_s: timer ? Number(timer) : null});
  });
  $("#start-duel").addEventListener("click", () => start({mode: "duel",
    duel: {countdown_s: Number($("#duel-countdown").value), initial_hp: Number($("#duel-hp").value)}}));
  $("#start-blind").addEventListener("click", () => start({mode: "blind"}));

  Arena.validPlayer().then((p) => { render(p); refreshLobby(); }).catch((e) => toast(e.message));
  setInterval(refreshLobby, 2000);
})();
