// Stats page, second part: GET /api/stats/match (arena/matchstats.py, the numbers of `pigeon stats`) as tables
// and small SVG plots: score histogram per player, rating history, duel HP curves.
"use strict";

(() => {
  const {api, $, el, toast} = Arena;
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#f5b700", "#e8457a", "#3b82f6", "#22c55e", "#a855f7", "#f97316", "#14b8a6", "#94a3b8"];
  const num = (v, d = 0) => v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US", {maximumFractionDigits: d});
  const pct = (v) => v === null || v === undefined ? "–" : `${(100 * v).toFixed(0)} %`;

  function svg(w, h, children) {
    const s = document.createElementNS(NS, "svg");
    s.setAttribute("viewBox", `0 0 ${w} ${h}`);
    s.setAttribute("width", w);
    s.setAttribute("height", h);
    s.classList.add("plot");
    for (const c of children) s.appendChild(c);
    return s;
  }
  function node(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function table(id, cols, rows) {
    const head = el("tr", {}, ...cols.map(([label]) => el("th", {}, label)));
    const body = rows.length ? rows.map((r) => el("tr", {}, ...cols.map(([, f]) => el("td", {}, f(r))))) :
      [el("tr", {}, el("td", {colspan: cols.length, class: "muted"}, "no games yet"))];
    $(`#${id}`).replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
  }
  function empty(id) { $(`#${id}`).replaceChildren(el("p", {class: "muted"}, "no games yet")); }

  // a line chart: series [{label, color, points: [[x, y]]}], axis labels, y range
  function lines(title, series, xLabel, yLabel, yMin, yMax, w = 420, h = 220) {
    const pad = {l: 52, r: 10, t: 22, b: 34};
    const xs = series.flatMap((s) => s.points.map((p) => p[0]));
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
    const X = (x) => pad.l + (w - pad.l - pad.r) * (x - x0) / (x1 - x0);
    const Y = (y) => h - pad.b - (h - pad.t - pad.b) * (y - yMin) / ((yMax - yMin) || 1);
    const kids = [node("text", {x: pad.l, y: 14, class: "plot-title"}, title),
      node("line", {x1: pad.l, y1: h - pad.b, x2: w - pad.r, y2: h - pad.b, class: "axis"}),
      node("line", {x1: pad.l, y1: pad.t, x2: pad.l, y2: h - pad.b, class: "axis"}),
      node("text", {x: pad.l - 4, y: Y(yMax) + 4, class: "tick", "text-anchor": "end"}, num(yMax)),
      node("text", {x: pad.l - 4, y: Y(yMin) + 4, class: "tick", "text-anchor": "end"}, num(yMin)),
      node("text", {x: (w + pad.l) / 2, y: h - 6, class: "tick", "text-anchor": "middle"}, xLabel),
      node("text", {x: 12, y: (h - pad.b + pad.t) / 2, class: "tick", transform: `rotate(-90 12 ${(h - pad.b + pad.t) / 2})`,
        "text-anchor": "middle"}, yLabel)];
    series.forEach((s, i) => {
      kids.push(node("polyline", {points: s.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" "), fill: "none",
        stroke: s.color, "stroke-width": 2}));
      kids.push(node("text", {x: w - pad.r, y: pad.t + 12 * i, class: "tick", "text-anchor": "end", fill: s.color}, s.label));
    });
    return svg(w, h, kids);
  }

  function histogram(h) {
    const players = Object.keys(h.counts);
    if (!players.length) return empty("m-hist");
    const w = 420, hh = 200, pad = {l: 40, r: 10, t: 22, b: 34};
    $("#m-hist").replaceChildren(...players.slice(0, 8).map((p, i) => {
      const c = h.counts[p], max = Math.max(...c, 1), bw = (w - pad.l - pad.r) / c.length;
      const kids = [node("text", {x: pad.l, y: 14, class: "plot-title"}, `${p} (${num(c.reduce((a, b) => a + b, 0))} rounds)`),
        node("line", {x1: pad.l, y1: hh - pad.b, x2: w - pad.r, y2: hh - pad.b, class: "axis"}),
        node("text", {x: pad.l - 4, y: pad.t + 4, class: "tick", "text-anchor": "end"}, num(max)),
        node("text", {x: (w + pad.l) / 2, y: hh - 6, class: "tick", "text-anchor": "middle"}, "points per round (0 … 5,000)")];
      c.forEach((n, k) => {
        const bh = (hh - pad.t - pad.b) * n / max;
        kids.push(node("rect", {x: pad.l + k * bw + 1, y: hh - pad.b - bh, width: bw - 2, height: bh, fill: COLORS[i % COLORS.length]},
          undefined));
        if (k % 2 === 0) kids.push(node("text", {x: pad.l + k * bw, y: hh - pad.b + 12, class: "tick"}, num(h.edges[k])));
      });
      return svg(w, hh, kids);
    }));
  }

  function ratings(history) {
    if (!history.length) return empty("m-ratings");
    const ys = history.flatMap((s) => s.points.map((p) => p.rating));
    const series = history.slice(0, 8).map((s, i) => ({label: s.player, color: COLORS[i % COLORS.length],
      points: s.points.map((p) => [p.n, p.rating])}));
    $("#m-ratings").replaceChildren(lines("Elo after each rated game", series, "rated games", "Elo",
      Math.floor(Math.min(...ys) / 10) * 10, Math.ceil(Math.max(...ys) / 10) * 10, 640, 260));
  }

  function hpCurves(curves) {
    if (!curves.length) return empty("m-hp");
    const seen = new Set(), shown = [];
    for (const c of curves.slice().reverse()) {           // newest first, one panel per duel
      if (seen.has(c.match)) continue;
      seen.add(c.match);
      shown.push(c);
      if (shown.length >= 12) break;
    }
    $("#m-hp").replaceChildren(...shown.map((c) => {
      const top = Math.max(...c.points.flatMap((p) => [p.hp, p.opponent_hp]).filter((v) => v !== null), 1);
      return lines(`${c.player} vs ${c.opponent || "?"}`, [
        {label: c.player, color: COLORS[0], points: c.points.filter((p) => p.hp !== null).map((p) => [p.round, p.hp])},
        {label: c.opponent || "opponent", color: COLORS[1],
          points: c.points.filter((p) => p.opponent_hp !== null).map((p) => [p.round, p.opponent_hp])}],
      "round (0 = start)", "HP", 0, top, 300, 180);
    }));
  }

  api("GET", "/api/stats/match").then((s) => {
    table("m-countries", [["player", (r) => r.player], ["country", (r) => r.country], ["rounds", (r) => num(r.rounds)],
      ["hit rate", (r) => pct(r.hit_rate)], ["mean score", (r) => num(r.mean_score)], ["median km", (r) => num(r.median_km)],
      ["usual wrong guess", (r) => r.wrong_guess === null ? "–" : `${r.wrong_guess || "at sea"} (${r.wrong_guess_n})`]],
    s.countries);
    histogram(s.score_histogram);
    ratings(s.rating_history);
    hpCurves(s.hp_curves);
    table("m-opponents", [["player", (r) => r.player], ["opponent", (r) => r.opponent], ["matches", (r) => num(r.matches)],
      ["W-D-L", (r) => `${r.wins}-${r.draws}-${r.losses}`], ["rounds", (r) => num(r.rounds)],
      ["mean score", (r) => num(r.mean_score)], ["opponent mean", (r) => num(r.opponent_mean_score)],
      ["score diff / round", (r) => num(r.mean_score_diff)]], s.opponents);
    table("m-streaks", [["player", (r) => r.player], ["longest win streak", (r) => num(r.longest_win_streak)],
      ["longest loss streak", (r) => num(r.longest_loss_streak)], ["current", (r) => r.current_streak > 0 ?
        `+${r.current_streak}` : String(r.current_streak)], ["country hits in a row", (r) => num(r.longest_country_hit_streak)],
      ["4k+ in a row", (r) => num(r.longest_4k_streak)], ["5k in a row", (r) => num(r.longest_5k_streak)]], s.streaks);
  }).catch((e) => toast(e.message));
})();
