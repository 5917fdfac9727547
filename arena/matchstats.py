"""Match statistics for duel runners and streamers, from the bot's match log and from the arena database alike.

Pure computation over plain rows (no SQLite, Playwright or torch here; ``pigeon stats`` and the arena's stats
page (``arena.stats.match_stats``) read the files, and ``docs/stats.md`` documents every key). It lives in the
arena so the arena's page can use it; ``pigeon.matchstats`` is the same module. Both sources are first turned into the same three row shapes:

- a **round** row (one player's round): ``match, round, player, opponent, mode, time, true_lat, true_lon,
  true_country, guess_lat, guess_lon, guess_country, dist_km, score, multiplier, hp_before, hp_after,
  opponent_hp_before, opponent_hp_after, opponent_score`` (degrees, km, GeoGuessr points, HP; None = unknown);
- a **match** row (one player's match): ``match, player, opponent, mode, site, time, rounds, total_score, result
  ('win' | 'loss' | 'draw' | None), hp_end, opponent_hp_end``;
- a **rating** row: ``player, time, match, before, after`` (Elo).

:func:`compute` turns them into the tables and series of :data:`STATS_KEYS`; :func:`render_html` into a
self-contained page with PNG plots.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from model.formats.display import format_cell, png_base64, pyplot

MAX_SCORE = 5000
HIST_BIN_POINTS = 500
DEFAULT_INITIAL_HP = 6000
STATS_KEYS = ("source", "summary", "countries", "score_histogram", "opponents", "streaks", "matches", "hp_curves",
              "rating_history")
Row = Mapping[str, Any]
CountryAt = Callable[[Sequence[float], Sequence[float]], Sequence[str]]


# ---- sources -> rows --------------------------------------------------------------------------------------------
def _bot_name(model_run: str | None) -> str:
    if not model_run:
        return "bot"
    return f"bot ({str(model_run).rstrip('/').rsplit('/', 1)[-1]})"


def _result(won: Any, draw: Any) -> str | None:
    if draw:
        return "draw"
    return None if won is None else ("win" if won else "loss")


def matchlog_rows(rounds: Iterable[Row], matches: Iterable[Row]) -> tuple[list[dict], list[dict]]:
    """The match log's ``rounds`` joined rows (``bot.matchlog.rounds_table``) and ``matches`` rows -> (round rows,
    match rows). The player is the bot (named by its run folder); the log does not name opponents, so the opponent
    is the site and mode (e.g. ``arena duel``), or the match row's ``opponent`` when it has one."""
    mrows = {m["id"]: dict(m) for m in matches}
    out_rounds = []
    for r in rounds:
        m = mrows.get(r["match_id"], {})
        lat = r.get("placed_lat") if r.get("placed_lat") is not None else r.get("guess_lat")
        lon = r.get("placed_lon") if r.get("placed_lon") is not None else r.get("guess_lon")
        out_rounds.append({
            "match": str(r["match_id"]), "round": r["round_n"], "player": _bot_name(m.get("model_run")),
            "opponent": _ml_opponent(m), "mode": m.get("mode") or r.get("mode"), "time": r.get("logged_utc"),
            "true_lat": r.get("truth_lat"), "true_lon": r.get("truth_lon"), "true_country": r.get("truth_country"),
            "guess_lat": lat, "guess_lon": lon, "guess_country": None, "dist_km": r.get("dist_km"),
            "score": r.get("score"), "multiplier": r.get("multiplier"), "hp_before": r.get("hp_own_before"),
            "hp_after": r.get("hp_own_after"), "opponent_hp_before": r.get("hp_opponent_before"),
            "opponent_hp_after": r.get("hp_opponent_after"), "opponent_score": r.get("opponent_score")})
    n_rounds = Counter(r["match"] for r in out_rounds)
    out_matches = [{
        "match": str(mid), "player": _bot_name(m.get("model_run")), "opponent": _ml_opponent(m),
        "mode": m.get("mode"), "site": m.get("site"), "time": m.get("started_utc"), "rounds": n_rounds[str(mid)],
        "total_score": m.get("total_score"), "result": _result(m.get("won"), m.get("draw")),
        "hp_end": m.get("hp_own"), "opponent_hp_end": m.get("hp_opponent")} for mid, m in mrows.items()]
    return out_rounds, out_matches


def _ml_opponent(m: Row) -> str | None:
    if m.get("opponent"):
        return str(m["opponent"])
    if m.get("mode") in ("duel", "duels", "team_duel"):
        return f"{m.get('site') or '?'} {m.get('mode')}"
    return None


def arena_rows(guesses: Iterable[Row], games: Iterable[Row],
               ratings: Iterable[Row] = ()) -> tuple[list[dict], list[dict], list[dict]]:
    """The arena's closed-round guesses (``arena.stats.rounds_table`` rows), its games with seats (one row per seat:
    ``game_id, mode, status, seat, player, winner_seat, total_score, hp, initial_hp, finished``) and its
    ``rating_history`` rows with player names (``player, created, game_id, before, after``) -> (round rows, match
    rows, rating rows). HP per round is the game's initial HP minus the seat's cumulative damage."""
    guesses = [dict(g) for g in guesses]
    seats = defaultdict(dict)
    for g in games:
        seats[g["game_id"]][g["seat"]] = dict(g)
    by_round = defaultdict(dict)
    for g in guesses:
        by_round[(g["game_id"], g["round"])][g["seat"]] = g
    hp = {}  # (game, seat) -> hp before the next round
    out_rounds = []
    for g in sorted(guesses, key=lambda g: (g["game_id"], g["round"], g["seat"])):
        game, seat = g["game_id"], g["seat"]
        others = [s for s in seats.get(game, {}) if s != seat]
        opp_seat = others[0] if len(others) == 1 else None
        opp = by_round[(game, g["round"])].get(opp_seat) if opp_seat is not None else None
        duel = g["mode"] in ("duel", "blind")
        init = (seats.get(game, {}).get(seat) or {}).get("initial_hp") or DEFAULT_INITIAL_HP
        row = {
            "match": game, "round": g["round"], "player": g["player"],
            "opponent": (seats[game][opp_seat]["player"] if opp_seat is not None else None),
            "mode": g["mode"], "time": g.get("closed"), "true_lat": g.get("true_lat"), "true_lon": g.get("true_lon"),
            "true_country": g.get("country"), "guess_lat": g.get("guess_lat"), "guess_lon": g.get("guess_lon"),
            "guess_country": None, "dist_km": g.get("dist_km"), "score": g.get("score"),
            "multiplier": g.get("multiplier"), "hp_before": None, "hp_after": None, "opponent_hp_before": None,
            "opponent_hp_after": None, "opponent_score": opp["score"] if opp else None}
        if duel:
            before = hp.get((game, seat), init)
            row["hp_before"], row["hp_after"] = before, max(0, before - int(g.get("damage") or 0))
            hp[(game, seat)] = row["hp_after"]
        out_rounds.append(row)
    if any(r["hp_before"] is not None for r in out_rounds):  # the opponent's HP is the other seat's own row
        mine = {(r["match"], r["round"], r["player"]): r for r in out_rounds}
        for r in out_rounds:
            o = mine.get((r["match"], r["round"], r["opponent"]))
            if o is not None:
                r["opponent_hp_before"], r["opponent_hp_after"] = o["hp_before"], o["hp_after"]
    n_rounds = Counter((r["match"], r["player"]) for r in out_rounds)
    out_matches = []
    for game, ss in seats.items():
        for seat, s in ss.items():
            opp = [o for k, o in ss.items() if k != seat]
            result = None
            if s.get("status") == "finished" and s.get("mode") in ("duel", "blind"):
                w = s.get("winner_seat")
                result = "draw" if w is None else ("win" if w == seat else "loss")
            out_matches.append({
                "match": game, "player": s["player"], "opponent": opp[0]["player"] if len(opp) == 1 else None,
                "mode": s.get("mode"), "site": "arena", "time": s.get("finished"),
                "rounds": n_rounds[(game, s["player"])], "total_score": s.get("total_score"), "result": result,
                "hp_end": s.get("hp"), "opponent_hp_end": opp[0].get("hp") if len(opp) == 1 else None})
    out_ratings = [{"player": r["player"], "time": r.get("created"), "match": r.get("game_id"),
                    "before": r["before"], "after": r["after"]} for r in ratings]
    return out_rounds, out_matches, out_ratings


# ---- computation ------------------------------------------------------------------------------------------------
def _fmean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _natural(v: Any) -> tuple:
    """Sort key that puts match ids '2' before '10' (match log ids are integers as text)."""
    s = str(v)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def _sort_key(r: Row) -> tuple:
    return (str(r.get("time") or ""), _natural(r.get("match")), r.get("round") or 0)


def fill_guess_countries(rounds: list[dict], country_at: CountryAt | None) -> None:
    """Set ``guess_country`` (ISO alpha-2, '' at sea) of rows that have a guess but no country, in place."""
    todo = [r for r in rounds if r.get("guess_country") is None and r.get("guess_lat") is not None
            and r.get("guess_lon") is not None]
    if country_at is None or not todo:
        return
    codes = country_at([r["guess_lat"] for r in todo], [r["guess_lon"] for r in todo])
    for r, c in zip(todo, codes):
        r["guess_country"] = str(c or "")


def _hit(r: Row) -> bool | None:
    """Did the guess land in the true country? None when either country is unknown."""
    if not r.get("true_country") or r.get("guess_country") is None:
        return None
    return r["guess_country"] == r["true_country"]


def country_table(rounds: list[Row]) -> list[dict[str, Any]]:
    """Per (player, true country), players alphabetically and most rounds first: rounds, country hit rate
    (0..1, None when unknown), mean score (points), median error (km), the most common wrong guessed country
    ('' = at sea) and how often."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rounds:
        groups[(r["player"], r.get("true_country") or "?")].append(r)
    out = []
    for (player, country), rs in groups.items():
        hits = [h for h in map(_hit, rs) if h is not None]
        wrong = Counter(r["guess_country"] for r in rs if _hit(r) is False)
        wg = wrong.most_common(1)[0] if wrong else (None, 0)
        out.append({"player": player, "country": country, "rounds": len(rs),
                    "hit_rate": round(sum(hits) / len(hits), 3) if hits else None,
                    "mean_score": _fmean([r["score"] for r in rs if r.get("score") is not None]),
                    "median_km": _median([r["dist_km"] for r in rs if r.get("dist_km") is not None]),
                    "wrong_guess": wg[0], "wrong_guess_n": wg[1]})
    return sorted(out, key=lambda d: (d["player"], -d["rounds"], d["country"]))


def score_histogram(rounds: list[Row], bin_points: int = HIST_BIN_POINTS) -> dict[str, Any]:
    """Round scores per player counted in bins of ``bin_points`` over 0..5000 (the last bin includes 5000)."""
    edges = list(range(0, MAX_SCORE + bin_points, bin_points))
    n_bins = len(edges) - 1
    counts: dict[str, list[int]] = {}
    for r in rounds:
        if r.get("score") is None:
            continue
        c = counts.setdefault(r["player"], [0] * n_bins)
        c[min(int(r["score"]) // bin_points, n_bins - 1)] += 1
    return {"bin_points": bin_points, "edges": edges, "counts": dict(sorted(counts.items()))}


def _streaks(results: list[str | None]) -> tuple[int, int, int]:
    """(longest win streak, longest loss streak, current streak: +n wins / -n losses / 0) over results in time
    order; draws and unknown results break a streak."""
    best = {"win": 0, "loss": 0}
    cur_kind, cur = None, 0
    for res in results:
        if res in best and res == cur_kind:
            cur += 1
        else:
            cur_kind, cur = (res, 1) if res in best else (None, 0)
        if cur_kind:
            best[cur_kind] = max(best[cur_kind], cur)
    return best["win"], best["loss"], (cur if cur_kind == "win" else -cur if cur_kind == "loss" else 0)


def _longest(flags: list[bool]) -> int:
    best = cur = 0
    for f in flags:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return best


def streak_table(rounds: list[Row], matches: list[Row]) -> list[dict[str, Any]]:
    """Per player: match streaks (longest win, longest loss, current: +n wins or -n losses) and round streaks
    (longest run of country hits, of rounds >= 4,000 points and of 5,000-point rounds)."""
    out = []
    for player in sorted({r["player"] for r in rounds} | {m["player"] for m in matches}):
        ms = sorted((m for m in matches if m["player"] == player and m.get("result")), key=_sort_key)
        rs = sorted((r for r in rounds if r["player"] == player), key=_sort_key)
        win, loss, current = _streaks([m["result"] for m in ms])
        out.append({"player": player, "longest_win_streak": win, "longest_loss_streak": loss,
                    "current_streak": current, "longest_country_hit_streak": _longest([_hit(r) is True for r in rs]),
                    "longest_4k_streak": _longest([(r.get("score") or 0) >= 4000 for r in rs]),
                    "longest_5k_streak": _longest([(r.get("score") or 0) >= MAX_SCORE for r in rs])})
    return out


def summary_table(rounds: list[Row], matches: list[Row]) -> list[dict[str, Any]]:
    """Per player: matches, wins/losses/draws, rounds, mean score (points), median error (km), country hit rate,
    5k rounds."""
    out = []
    for player in sorted({r["player"] for r in rounds} | {m["player"] for m in matches}):
        rs = [r for r in rounds if r["player"] == player]
        ms = [m for m in matches if m["player"] == player]
        hits = [h for h in map(_hit, rs) if h is not None]
        res = Counter(m.get("result") for m in ms)
        scores = [r["score"] for r in rs if r.get("score") is not None]
        out.append({"player": player, "matches": len(ms), "wins": res["win"], "losses": res["loss"],
                    "draws": res["draw"], "rounds": len(rs), "mean_score": _fmean(scores),
                    "median_km": _median([r["dist_km"] for r in rs if r.get("dist_km") is not None]),
                    "country_hit_rate": round(sum(hits) / len(hits), 3) if hits else None,
                    "rounds_5k": sum(1 for s in scores if s >= MAX_SCORE)})
    return out


def opponent_table(rounds: list[Row], matches: list[Row]) -> list[dict[str, Any]]:
    """Per (player, opponent): matches, wins/losses/draws, rounds, both mean round scores (points) and the mean
    difference (player - opponent) over rounds where both scored."""
    keys = sorted({(m["player"], m["opponent"]) for m in matches if m.get("opponent")}
                  | {(r["player"], r["opponent"]) for r in rounds if r.get("opponent")})
    out = []
    for player, opp in keys:
        ms = [m for m in matches if m["player"] == player and m.get("opponent") == opp]
        rs = [r for r in rounds if r["player"] == player and r.get("opponent") == opp]
        both = [r for r in rs if r.get("score") is not None and r.get("opponent_score") is not None]
        res = Counter(m.get("result") for m in ms)
        out.append({"player": player, "opponent": opp, "matches": len(ms), "wins": res["win"],
                    "losses": res["loss"], "draws": res["draw"], "rounds": len(rs),
                    "mean_score": _fmean([r["score"] for r in rs if r.get("score") is not None]),
                    "opponent_mean_score": _fmean([r["opponent_score"] for r in both]),
                    "mean_score_diff": _fmean([r["score"] - r["opponent_score"] for r in both])})
    return out


def hp_curves(rounds: list[Row], initial_hp: int = DEFAULT_INITIAL_HP) -> list[dict[str, Any]]:
    """Per duel match and player (rows with HP): the HP of both sides after each round, starting with the HP
    before round 1 (``round`` 0)."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rounds:
        if r.get("hp_after") is not None or r.get("hp_before") is not None:
            groups[(r["match"], r["player"])].append(r)
    out = []
    for (match, player), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["round"])
        first = rs[0]
        pts = [{"round": 0, "hp": first.get("hp_before") if first.get("hp_before") is not None else initial_hp,
                "opponent_hp": first.get("opponent_hp_before") if first.get("opponent_hp_before") is not None
                else initial_hp, "score": None, "opponent_score": None, "multiplier": None}]
        for r in rs:
            pts.append({"round": r["round"], "hp": r.get("hp_after"), "opponent_hp": r.get("opponent_hp_after"),
                        "score": r.get("score"), "opponent_score": r.get("opponent_score"),
                        "multiplier": r.get("multiplier")})
        out.append({"match": match, "player": player, "opponent": first.get("opponent"),
                    "time": first.get("time"), "points": pts})
    return sorted(out, key=lambda c: (str(c["time"] or ""), _natural(c["match"]), c["player"]))


def rating_history(ratings: list[Row]) -> list[dict[str, Any]]:
    """Per player: the Elo rating after each rated match, in time order (the first point is the rating before)."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in ratings:
        groups[r["player"]].append(r)
    out = []
    for player, rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: (r.get("time") or 0, str(r.get("match"))))
        pts = [{"n": 0, "match": None, "time": rs[0].get("time"), "rating": round(float(rs[0]["before"]), 1)}]
        pts += [{"n": i, "match": r.get("match"), "time": r.get("time"), "rating": round(float(r["after"]), 1)}
                for i, r in enumerate(rs, 1)]
        out.append({"player": player, "points": pts})
    return out


def compute(rounds: Iterable[Row], matches: Iterable[Row] = (), ratings: Iterable[Row] = (), *,
            source: str = "", country_at: CountryAt | None = None) -> dict[str, Any]:
    """Every statistic (:data:`STATS_KEYS`) of round, match and rating rows from either source. ``country_at``
    (lats, lons -> ISO codes) fills in the guessed countries that the rows lack (without it, hit rates are None)."""
    rounds = [dict(r) for r in rounds]
    matches = [dict(m) for m in matches]
    ratings = [dict(r) for r in ratings]
    fill_guess_countries(rounds, country_at)
    ordered = sorted(matches, key=_sort_key)
    return {"source": source, "summary": summary_table(rounds, matches), "countries": country_table(rounds),
            "score_histogram": score_histogram(rounds), "opponents": opponent_table(rounds, matches),
            "streaks": streak_table(rounds, matches), "matches": ordered, "hp_curves": hp_curves(rounds),
            "rating_history": rating_history(ratings)}


def tables(stats: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The flat tables of :func:`compute`'s result (for the console and CSV): the series become rows too."""
    hist = stats["score_histogram"]
    hist_rows = [{"player": p, **{f"{lo}-{lo + hist['bin_points']}": n for lo, n in zip(hist["edges"], counts)}}
                 for p, counts in hist["counts"].items()]
    hp_rows = [{"match": c["match"], "player": c["player"], "opponent": c["opponent"], **p}
               for c in stats["hp_curves"] for p in c["points"]]
    rating_rows = [{"player": h["player"], **p} for h in stats["rating_history"] for p in h["points"]]
    return {"summary": stats["summary"], "opponents": stats["opponents"], "streaks": stats["streaks"],
            "countries": stats["countries"], "score_histogram": hist_rows, "matches": stats["matches"],
            "hp_curves": hp_rows, "rating_history": rating_rows}


def to_json(stats: Mapping[str, Any]) -> str:
    """JSON text (NaN refused, other objects as strings)."""
    return json.dumps(stats, indent=1, allow_nan=False, default=str) + "\n"


# ---- the HTML page ----------------------------------------------------------------------------------------------
PNG_DPI = 100


def plot_histogram(hist: Mapping[str, Any]) -> str | None:
    """Bars of round scores per player (points, fraction of the player's rounds)."""
    if not hist["counts"]:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    edges, k = hist["edges"], len(hist["counts"])
    width = hist["bin_points"] / (k + 0.5)
    for i, (player, counts) in enumerate(hist["counts"].items()):
        total = max(1, sum(counts))
        ax.bar([e + i * width for e in edges[:-1]], [c / total for c in counts], width=width, align="edge",
               label=f"{player} ({total} rounds)")
    ax.set(xlabel=f"round score (points, bins of {hist['bin_points']})", ylabel="fraction of rounds",
           xlim=(0, MAX_SCORE))
    ax.legend(fontsize=8)
    return png_base64(fig, PNG_DPI)


def plot_ratings(history: list[Mapping[str, Any]]) -> str | None:
    """Elo after each rated match, one line per player."""
    if not history:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for h in history:
        ax.plot([p["n"] for p in h["points"]], [p["rating"] for p in h["points"]], "-o", ms=3, label=h["player"])
    ax.set(xlabel="rated matches played", ylabel="Elo rating")
    ax.legend(fontsize=8)
    return png_base64(fig, PNG_DPI)


def plot_hp_curves(curves: list[Mapping[str, Any]], max_panels: int = 12) -> str | None:
    """Small multiples: HP of the player (solid) and the opponent (dashed) after each round of the last
    ``max_panels`` duels (one panel per match, from the first player's side)."""
    seen, picked = set(), []
    for c in reversed(curves):
        if c["match"] not in seen:
            seen.add(c["match"])
            picked.append(c)
        if len(picked) == max_panels:
            break
    if not picked:
        return None
    picked.reverse()
    plt = pyplot()
    cols = min(4, len(picked))
    rows = (len(picked) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False, sharey=True)
    for ax, c in zip(axes.flat, picked):
        x = [p["round"] for p in c["points"]]
        ax.plot(x, [p["hp"] for p in c["points"]], "-o", ms=3, label=c["player"])
        ax.plot(x, [p["opponent_hp"] for p in c["points"]], "--s", ms=3, label=c["opponent"] or "opponent")
        ax.set_title(f"match {c['match']}"[:40], fontsize=8)
        ax.set_xlabel("round", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=6)
    for ax in axes.flat[len(picked):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("HP")
    fig.tight_layout()
    return png_base64(fig, PNG_DPI)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pigeon stats: {{ source }}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1300px}
h2{margin-top:1.5em;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:.88em}
td,th{border:1px solid #ccc;padding:2px 7px;text-align:right}th{background:#f6f6f6}
td.t,th.t{text-align:left}.note{color:#555}img{max-width:100%}.scroll{max-height:30em;overflow-y:auto;display:inline-block}
</style></head><body>
<h1>pigeon stats</h1><p>Source: <b>{{ source }}</b>. Scores are GeoGuessr points per round (0–5,000), distances
great-circle km, hit rate = the guess landed in the true country (offline borders), HP = duel health points.</p>
{% macro table(rows, title, note="") %}
<h2>{{ title }}</h2>{% if note %}<p class="note">{{ note }}</p>{% endif %}
{% if rows %}<div class="scroll"><table><tr>{% for k, v in rows[0].items() %}<th{% if v is string %} class="t"{% endif %}>{{ k | replace("_", " ") }}</th>{% endfor %}</tr>
{% for r in rows %}<tr>{% for v in r.values() %}<td{% if v is string %} class="t"{% endif %}>{{ v | cell }}</td>{% endfor %}</tr>
{% endfor %}</table></div>{% else %}<p class="note">none yet</p>{% endif %}
{% endmacro %}
{{ table(summary, "Players", "mean score in points, median error in km, country hit rate in %") }}
{{ table(opponents, "Against each opponent", "mean score diff = player − opponent, points per round") }}
{{ table(streaks, "Streaks", "matches: longest win / loss streak, current (+n wins, −n losses); rounds: longest run of country hits, of rounds ≥ 4,000 and of 5,000-point rounds") }}
<h2>Score distribution</h2>{% if plots.hist %}<img alt="score histogram" src="data:image/png;base64,{{ plots.hist }}">{% else %}<p class="note">no rounds yet</p>{% endif %}
<h2>Rating history</h2>{% if plots.ratings %}<img alt="rating history" src="data:image/png;base64,{{ plots.ratings }}">{% else %}<p class="note">no rated matches ({{ "the match log records no ratings" if "match log" in source else "none yet" }})</p>{% endif %}
<h2>Duel HP per match</h2>{% if plots.hp %}<img alt="HP curves" src="data:image/png;base64,{{ plots.hp }}">{% else %}<p class="note">no duels yet</p>{% endif %}
{{ table(countries, "Per country", "rounds, country hit rate (%), mean score (points), median error (km), most common wrong guess (country, or sea) and how often") }}
{{ table(matches, "Matches", "result from the player's side; HP at the end") }}
{% for title, rows in extra.items() %}{{ table(rows, title) }}{% endfor %}
</body></html>
"""


def render_html(stats: Mapping[str, Any], extra: Mapping[str, list[dict]] | None = None) -> str:
    """A self-contained page (tables, PNG plots as data URIs) of :func:`compute`'s result; ``extra``: more tables
    by title (e.g. the arena's leaderboard), shown last."""
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default_for_string=True, default=True))
    env.filters["cell"] = format_cell
    pct = lambda rows, key: [{**r, key: None if r.get(key) is None else round(100 * r[key], 1)} for r in rows]
    plots = {"hist": plot_histogram(stats["score_histogram"]), "ratings": plot_ratings(stats["rating_history"]),
             "hp": plot_hp_curves(stats["hp_curves"])}
    return env.from_string(PAGE).render(
        source=stats.get("source") or "", summary=pct(stats["summary"], "country_hit_rate"),
        opponents=stats["opponents"], streaks=stats["streaks"],
        countries=[{**r, "wrong_guess": "sea" if r["wrong_guess"] == "" else r["wrong_guess"]}
                   for r in pct(stats["countries"], "hit_rate")],
        matches=stats["matches"], plots=plots, extra=dict(extra or {}))
