// Stats page: renders GET /api/stats (the same queries as `pigeon stats`) as tables.
"use strict";

(() => {
  const {api, $, el, toast} = Arena;
  const COLUMNS = {
    "t-hvb": ["measure", "estimate", "ci95_low", "ci95_high", "n", "games", "unit"],
    "t-ratings": ["player", "kind", "mu", "sigma", "ci95_low", "ci95_high", "ordinal", "games"],
    "t-verdicts": ["verdicts", "accuracy", "ci95_low", "ci95_high", "n", "said_bot"],
    "t-leaderboard": ["rank", "player", "kind", "rating", "games", "wins", "losses", "draws"],
    "t-players": ["player", "kind", "rounds", "mean_score", "median_km", "perfect_5k", "timeouts", "wins", "losses", "rating"],
    "t-blind": ["opponent", "games", "human_wins", "human_losses", "draws", "rounds", "human_mean_score", "opponent_mean_score"],
    "t-blind-games": ["game_id", "human", "opponent", "opponent_kind", "verdict", "human_total", "opponent_total", "winner_seat"],
    "t-countries": ["who", "country", "rounds", "mean_score", "median_km", "mean_km", "perfect_5k"],
  };
  const KEYS = {"t-hvb": "human_vs_bot", "t-ratings": "ratings", "t-verdicts": "verdicts", "t-leaderboard": "leaderboard", "t-players": "players", "t-blind": "blind",
    "t-blind-games": "blind_games", "t-countries": "countries"};
  const cell = (v) => v === null || v === undefined ? "–" :
    typeof v === "number" ? v.toLocaleString("en-US", {maximumFractionDigits: 1}) : String(v);

  function table(id, rows) {
    const cols = COLUMNS[id];
    const head = el("tr", {}, ...cols.map((c) => el("th", {}, c.replaceAll("_", " "))));
    const body = rows.length ? rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", {}, cell(r[c]))))) :
      [el("tr", {}, el("td", {colspan: cols.length, class: "muted"}, "no games yet"))];
    $(`#${id}`).replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
  }

  api("GET", "/api/stats").then((s) => {
    for (const [id, key] of Object.entries(KEYS)) table(id, s[key]);
  }).catch((e) => toast(e.message));
})();
