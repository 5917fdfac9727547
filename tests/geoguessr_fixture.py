"""A local stand-in for geoguessr.com, for testing bot/sites/geoguessr.py without the live site.

It serves pages that copy the live site's structure as far as the bot relies on it (docs/bot.md, "Live
site"): hashed CSS-module class names and data-qa hooks, a ``#panorama-container`` drawn by a fake ``google.maps``
StreetViewPanorama (a canvas that loads a 360-degree strip by pano id), a Mercator guess map built on a fake
``google.maps.Map`` that grows on hover, ``__NEXT_DATA__`` snapshots and the JSON APIs: classic games
(``/api/v3/games``) and duels on a "game server" under ``/gs``. Every game-state answer carries the *true*
location of the current round, as the real site's does, so tests can prove the bot never sees it before
guessing. All /api/ calls need the ``_ncfa`` cookie. Time is real (duels have a simulated opponent).

Field shapes follow public sources (docs/bot.md, "Live site"): classic rounds carry ``streakLocationCode`` and no
``countryCode``, ``bounds`` and ``forbidMoving/Rotating/Zooming`` (zihaoli518/Hisuian-Rainbolt
src/exampleResponse.js); duels carry ``rounds[].multiplier`` = 1 and the real multiplier per team in
``teams[].roundResults[].multiplier`` / ``currentMultiplier``, ``movementOptions``, ``options.roundTime``,
``options.map.maxErrorDistance`` and ``maxNumberOfRounds`` 0 for unlimited (NickEvans4130/Geoguessr-API-Guide
docs/duels.md). Scores use ChatGuessr's form ``5000 * 0.99866017 ** (d_m / scale)``, scale = diagonal km / 7.458421,
5000 within 25 m (tzhf/chatguessr src/main/utils/gameHelper.ts) -- written independently of the adapter's.
``FixtureSite.requests`` logs every request (time, method, path, query) for rate measurements.
"""
from __future__ import annotations

import io
import json
import math
import random
import re
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from PIL import Image, ImageDraw

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NCFA = "fixture-ncfa-7f3a9c1e-do-not-log"
WORLD_MAX_ERROR_M = 14_916_862.0
USER_ID = "62cfc191491b94a2c57e676d"   # the account's id in classic answers (a secret for --record)
# the world map's bounds in a recorded classic answer (zihaoli518/Hisuian-Rainbolt src/exampleResponse.js)
WORLD_BOUNDS = {"min": {"lat": -54.853378, "lng": -159.778792}, "max": {"lat": 78.655743, "lng": 178.4508514404297}}
PLACES = [(48.8566, 2.3522, "fr"), (35.6762, 139.6503, "jp"), (-33.8688, 151.2093, "au"), (64.1466, -21.9426, "is"),
          (-1.2921, 36.8219, "ke"), (45.4215, -75.6972, "ca"), (-23.5505, -46.6333, "br"), (60.1699, 24.9384, "fi")]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dist_m(lat1, lon1, lat2, lon2, radius_km: float = 6371.0088) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * radius_km * 1000 * math.asin(min(1.0, math.sqrt(a)))


def _score(dist_m: float, bounds: dict = WORLD_BOUNDS) -> int:
    """ChatGuessr's calculateScore (legacy form) with calculateScale(bounds)."""
    if dist_m < 25:
        return 5000
    scale = _dist_m(bounds["min"]["lat"], bounds["min"]["lng"], bounds["max"]["lat"], bounds["max"]["lng"],
                    6371.071) / 1000 / 7.458421
    return round(5000 * 0.99866017 ** (dist_m / scale))


def _pano_hex(i: int, seed: int) -> str:
    return f"PANO{seed:04d}x{i:03d}CAFEBABE0".encode().hex().upper()  # hex-encoded, as the site sends ids


def strip_png(pano_plain: str) -> bytes:
    """The 1024x256 360-degree strip of a pano: eight coloured sectors seeded by the id (so headings differ)."""
    rng = random.Random(pano_plain)
    im = Image.new("RGB", (1024, 256))
    d = ImageDraw.Draw(im)
    for k in range(8):
        d.rectangle([k * 128, 0, k * 128 + 127, 255], fill=tuple(rng.randint(30, 230) for _ in range(3)))
        d.ellipse([k * 128 + 30, 60, k * 128 + 98, 128], fill=(255, 255, 255))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


class ClassicGame:
    def __init__(self, token: str, rounds: int, rng: random.Random, time_limit_s: int = 0,
                 forbid: tuple[bool, bool, bool] = (False, False, False), bounds: dict = WORLD_BOUNDS) -> None:
        self.token, self.round_count, self.time_limit = token, rounds, time_limit_s
        self.forbid, self.bounds = forbid, bounds
        self.locs = [(*rng.choice(PLACES), _pano_hex(i, rng.randint(0, 9999))) for i in range(rounds)]
        self.locs = [(lat + rng.uniform(-0.5, 0.5), lon + rng.uniform(-0.5, 0.5), cc, p) for lat, lon, cc, p in self.locs]
        self.round, self.guesses, self.started = 1, [], [time.time()]
        self.guess_posts: list[int] = []
        self.late_guesses: list[int] = []

    def state(self) -> dict[str, Any]:
        rounds = [{"lat": lat, "lng": lon, "panoId": pano, "heading": 37.5, "pitch": 0, "zoom": 0,
                   "streakLocationCode": cc, "startTime": _iso(self.started[i])}
                  for i, (lat, lon, cc, pano) in enumerate(self.locs[: self.round])]
        total = sum(g["roundScoreInPoints"] for g in self.guesses)
        return {"token": self.token, "type": "standard", "mode": "standard", "map": "world", "mapName": "World",
                "state": "finished" if len(self.guesses) == self.round_count else "started",
                "roundCount": self.round_count, "timeLimit": self.time_limit, "round": self.round, "rounds": rounds,
                "forbidMoving": self.forbid[0], "forbidRotating": self.forbid[1], "forbidZooming": self.forbid[2],
                "bounds": self.bounds,
                "player": {"id": USER_ID, "nick": "pigeon-bot", "guesses": self.guesses,
                           "totalScore": {"amount": str(total), "unit": "points"}}}

    def guess(self, body: dict) -> tuple[int, dict]:
        n = len(self.guesses) + 1
        self.guess_posts.append(n)
        if n > self.round_count or body.get("token") != self.token:
            return 400, {"message": "no round to guess"}
        lat, lon, cc, _ = self.locs[n - 1]
        d = _dist_m(lat, lon, body["lat"], body["lng"])
        sc = _score(d, self.bounds)
        self.guesses.append({"lat": body["lat"], "lng": body["lng"], "timedOut": bool(body.get("timedOut")),
                             "roundScoreInPoints": sc, "distanceInMeters": d,
                             "roundScore": {"amount": str(sc), "unit": "points"}})
        if self.time_limit and time.time() > self.started[n - 1] + self.time_limit:
            self.late_guesses.append(n)
        if n < self.round_count:  # like the site: the answer already holds the next round
            self.round, self.started = n + 1, self.started + [time.time()]
        return 200, self.state()


class Duel:
    """Bot ("me") vs a simulated opponent who guesses ``opp_delay_s`` into every round near the answer. ``team``:
    a team duel, with a teammate ("mate") who guesses ``mate_delay_s`` into each round (far off). ``max_rounds``
    0 = unlimited (until a team's HP is 0). Each team has its own multiplier (the closer team's grows), as the
    live API has since April 2026; ``rounds[].multiplier`` stays 1."""

    def __init__(self, gid: str, rng: random.Random, max_rounds: int = 3, opp_delay_s: float = 1.0,
                 countdown_s: float = 8.0, intermission_s: float = 1.5, opp_error_deg: float = 3.0,
                 team: bool = False, mate_delay_s: float = 0.3, initial_hp: int = 6000,
                 forbid: tuple[bool, bool, bool] = (False, False, False)) -> None:
        self.id, self.rng, self.max_rounds = gid, rng, max_rounds
        self.opp_delay_s, self.countdown_s, self.intermission_s, self.opp_error = (opp_delay_s, countdown_s,
                                                                                   intermission_s, opp_error_deg)
        self.team, self.mate_delay_s, self.initial_hp, self.forbid = team, mate_delay_s, initial_hp, forbid
        self.hp = {"me": initial_hp, "opp": initial_hp}
        self.mult = {"me": 1.0, "opp": 1.0}
        self.rounds: list[dict] = []
        self.members = {"me": ["me", "mate"] if team else ["me"], "opp": ["opp"]}
        self.guesses: dict[str, list[dict]] = {"me": [], "mate": [], "opp": []}
        self.results: dict[str, list[dict]] = {"me": [], "opp": []}
        self.status = "InProgress"
        self.guess_posts: list[int] = []
        self.late_guesses: list[int] = []
        self.lock = threading.Lock()
        self._start_round(time.time())

    def _start_round(self, t: float) -> None:
        n = len(self.rounds) + 1
        lat, lon, cc = self.rng.choice(PLACES)
        self.rounds.append({"roundNumber": n, "multiplier": 1, "damageMultiplier": 1,
                            "isHealingRound": False, "startTime": t, "endTime": None, "timerStartTime": None,
                            "closed": None, "panorama": {"panoId": _pano_hex(n, self.rng.randint(0, 9999)),
                                                         "lat": lat, "lng": lon, "countryCode": cc, "heading": 200.0,
                                                         "pitch": 0.0}})

    def _add_guess(self, who: str, lat: float, lon: float, t: float) -> None:
        r = self.rounds[-1]
        d = _dist_m(r["panorama"]["lat"], r["panorama"]["lng"], lat, lon)
        self.guesses[who].append({"roundNumber": r["roundNumber"], "lat": lat, "lng": lon, "distance": d,
                                  "score": _score(d), "created": _iso(t)})
        if r["timerStartTime"] is None:
            r["timerStartTime"], r["endTime"] = t, t + self.countdown_s

    def _guessed(self, who: str, n: int) -> bool:
        return any(g["roundNumber"] == n for g in self.guesses[who])

    def tick(self, now: float) -> None:
        r = self.rounds[-1]
        if self.status == "Finished":
            return
        if r["closed"] is None:
            p = r["panorama"]
            if not self._guessed("opp", r["roundNumber"]) and now >= r["startTime"] + self.opp_delay_s:
                self._add_guess("opp", p["lat"] + self.opp_error, p["lng"] + self.opp_error, now)
            if self.team and not self._guessed("mate", r["roundNumber"]) and now >= r["startTime"] + self.mate_delay_s:
                self._add_guess("mate", -p["lat"], p["lng"] + 90.0, now)
            everyone = all(self._guessed(w, r["roundNumber"]) for t in self.members.values() for w in t)
            if everyone or (r["endTime"] is not None and now > r["endTime"]):
                self._close(r, now)
        elif now >= r["closed"] + self.intermission_s:
            self._start_round(now)

    def _team_score(self, team: str, n: int) -> int:
        return max((g["score"] for w in self.members[team] for g in self.guesses[w] if g["roundNumber"] == n),
                   default=0)

    def _close(self, r: dict, now: float) -> None:
        n = r["roundNumber"]
        sc = {t: self._team_score(t, n) for t in ("me", "opp")}
        winner = max(sc, key=sc.get) if sc["me"] != sc["opp"] else None
        for t in ("me", "opp"):
            self.mult[t] = 1.0 + 0.5 * (n - 1) if t == winner else 1.0 + 0.25 * (n - 1)
        for t in ("me", "opp"):
            before = self.hp[t]
            if winner is not None and t != winner:
                self.hp[t] = max(0, before - round(abs(sc["me"] - sc["opp"]) * self.mult[winner]))
            self.results[t].append({"roundNumber": n, "score": sc[t], "healthBefore": before,
                                    "healthAfter": self.hp[t], "multiplier": self.mult[t]})
        r["closed"] = now
        if min(self.hp.values()) == 0 or (self.max_rounds and n >= self.max_rounds):
            self.status = "Finished"

    def guess(self, body: dict) -> tuple[int, dict]:
        with self.lock:
            now = time.time()
            self.tick(now)
            r = self.rounds[-1]
            self.guess_posts.append(body.get("roundNumber"))
            if r["closed"] is not None and r["roundNumber"] == body.get("roundNumber"):
                self.late_guesses.append(r["roundNumber"])
            if self.status != "InProgress" or r["closed"] is not None or body.get("roundNumber") != r["roundNumber"] \
                    or self._guessed("me", r["roundNumber"]):
                return 400, {"message": "round not open for a guess"}
            self._add_guess("me", body["lat"], body["lng"], now)
            self.tick(now)
            return 200, self.state_locked(now)

    def state(self) -> dict[str, Any]:
        with self.lock:
            now = time.time()
            self.tick(now)
            return self.state_locked(now)

    def state_locked(self, now: float) -> dict[str, Any]:
        rounds = [{**{k: v for k, v in r.items() if k not in ("closed", "startTime", "endTime", "timerStartTime")},
                   "startTime": _iso(r["startTime"]), "endTime": _iso(r["endTime"]) if r["endTime"] else None,
                   "timerStartTime": _iso(r["timerStartTime"]) if r["timerStartTime"] else None,
                   "hasProcessedRoundTimeout": r["closed"] is not None} for r in self.rounds]
        teams = [{"id": f"team-{t}", "name": "red" if t == "me" else "blue", "health": self.hp[t],
                  "players": [{"playerId": w, "guesses": self.guesses[w]} for w in self.members[t]],
                  "roundResults": self.results[t], "isMultiplierActive": True, "currentMultiplier": self.mult[t]}
                 for t in ("me", "opp")]
        winner = None
        if self.status == "Finished":
            winner = "team-me" if self.hp["me"] > self.hp["opp"] else "team-opp" if self.hp["opp"] > self.hp["me"] else None
        movement = {"forbidMoving": self.forbid[0], "forbidRotating": self.forbid[1], "forbidZooming": self.forbid[2]}
        return {"gameId": self.id, "status": self.status, "currentRoundNumber": self.rounds[-1]["roundNumber"],
                "rounds": rounds, "teams": teams, "version": len(self.rounds) * 10 + len(self.results["me"]),
                "movementOptions": movement, "maxNumberOfRounds": self.max_rounds, "initialHealth": self.initial_hp,
                "options": {"initialHealth": self.initial_hp, "roundTime": self.countdown_s, "maxRoundTime": 0,
                            "maxNumberOfRounds": self.max_rounds, "isTeamDuels": self.team,
                            "movementOptions": movement,
                            "map": {"name": "World", "slug": "world", "bounds": WORLD_BOUNDS,
                                    "maxErrorDistance": WORLD_MAX_ERROR_M}},
                "result": {"isDraw": self.status == "Finished" and winner is None, "winningTeamId": winner}}


class FixtureSite:
    """The fixture server state: games, duels, and switches the tests flip (drop a hook, page variants)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.games: dict[str, ClassicGame] = {}
        self.challenges: dict[str, ClassicGame] = {}   # challenge token -> the account's game of it
        self.duels: dict[str, Duel] = {}
        self.requests: list[tuple[float, str, str, str]] = []   # (time, method, path, query) of every request
        self.tile_requests: list[str] = []
        self.unknown_tiles: list[str] = []
        self.drop_data_qa: set[str] = set()    # data-qa hooks to remove from pages (selector drift)
        self.no_hooks = False                  # serve pages whose maps cannot be hooked (fallback paths)
        self.duel_kwargs: dict[str, Any] = {}
        self.profile_id = "me"                 # the account; duels seat "me" (another id: a spectator)

    def _token(self) -> str:
        return "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(16))

    def new_game(self, rounds: int = 3, time_limit_s: int = 0, **kw: Any) -> ClassicGame:
        token = self._token()
        g = self.games[token] = ClassicGame(token, rounds, self.rng, time_limit_s, **kw)
        return g

    def new_challenge(self, rounds: int = 2, **kw: Any) -> tuple[str, ClassicGame]:
        """A challenge link's token and the game the account plays of it (served at /challenge/<token>)."""
        token = self._token()
        self.challenges[token] = g = self.new_game(rounds, **kw)
        return token, g

    def new_duel(self, **kw: Any) -> Duel:
        gid = f"{self.rng.getrandbits(64):016x}-duel"
        d = self.duels[gid] = Duel(gid, self.rng, **{**self.duel_kwargs, **kw})
        return d

    def known_panos(self) -> set[str]:
        ids = [p for g in self.games.values() for *_, p in g.locs] + \
              [r["panorama"]["panoId"] for d in self.duels.values() for r in d.rounds]
        return {bytes.fromhex(p).decode() for p in ids}


def _handler(site: FixtureSite):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8")

        def _log(self, method: str) -> None:
            u = urlparse(self.path)
            site.requests.append((time.time(), method, u.path, u.query))

        def _authed(self) -> bool:
            cookie = self.headers.get("Cookie") or ""
            return f"_ncfa={NCFA}" in cookie

        def _body(self) -> dict:
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n) or b"{}")

        def _page(self, name: str, snapshot: dict) -> None:
            html = (FIXTURES / name).read_text(encoding="utf-8")
            html = html.replace("__NEXT_DATA_JSON__", json.dumps({"props": {"pageProps": snapshot}}).replace("</", "<\\/"))
            for qa in site.drop_data_qa:
                html = re.sub(rf'\sdata-qa="{re.escape(qa)}"', "", html)
            if site.no_hooks:
                html = html.replace('data-hookable="1"', 'data-hookable="0"')
            self._send(200, html.encode(), "text/html; charset=utf-8")

        def do_GET(self) -> None:
            self._log("GET")
            u = urlparse(self.path)
            path = u.path
            if path.startswith("/fixtures/") and re.fullmatch(r"/fixtures/geoguessr_\w+\.js", path):
                return self._send(200, (FIXTURES / path.rsplit("/", 1)[1]).read_bytes(), "text/javascript")
            if path == "/streetview/tile":
                pano = parse_qs(u.query).get("panoid", [""])[0]
                site.tile_requests.append(pano)
                if pano not in site.known_panos():
                    site.unknown_tiles.append(pano)
                    return self._send(404, b"unknown pano", "text/plain")
                return self._send(200, strip_png(pano), "image/png")
            if path == "/":
                return self._send(200, b"<!doctype html><title>GeoGuessr fixture</title><p>home</p>", "text/html")
            if path == "/signin":
                return self._send(200, (FIXTURES / "geoguessr_signin.html").read_bytes(), "text/html; charset=utf-8")
            if re.fullmatch(r"/(battle-royale/[\w-]+|party)", path):
                return self._send(200, b"<!doctype html><title>Battle royale (fixture)</title>"
                                  b"<div class='game_root__X'>spectating</div>", "text/html")
            if not self._authed() and (path.startswith("/api/") or path.startswith("/gs/")):
                return self._json(401, {"message": "Unauthorized"})
            if path == "/api/v3/profiles":
                return self._json(200, {"user": {"id": site.profile_id, "nick": "pigeon-bot"}})
            m = re.fullmatch(r"/game/(\w+)", path)
            if m and m.group(1) in site.games:
                return self._page("geoguessr_game.html", {"gameSnapshot": site.games[m.group(1)].state()})
            m = re.fullmatch(r"/challenge/(\w+)", path)
            if m and m.group(1) in site.challenges:
                return self._page("geoguessr_game.html", {"gameSnapshot": site.challenges[m.group(1)].state()})
            m = re.fullmatch(r"/(?:team-)?duels/([\w-]+)", path)
            if m and m.group(1) in site.duels:
                return self._page("geoguessr_duels.html", {"gamePlayedByCurrentUser": site.duels[m.group(1)].state()})
            m = re.fullmatch(r"/api/v3/challenges/(\w+)/game", path)
            if m:
                g = site.challenges.get(m.group(1))
                return self._json(200, g.state()) if g else self._json(404, {"message": "not joined"})
            m = re.fullmatch(r"/api/v3/games/(\w+)", path)
            if m and m.group(1) in site.games:
                return self._json(200, site.games[m.group(1)].state())
            m = re.fullmatch(r"/gs/api/duels/([\w-]+)", path)
            if m and m.group(1) in site.duels:
                return self._json(200, site.duels[m.group(1)].state())
            self._json(404, {"message": "not found"})

        def do_POST(self) -> None:
            self._log("POST")
            path = urlparse(self.path).path
            if path == "/api/v3/accounts/signin":   # the sign-in form: sets the session cookie, as the site does
                body = self._body()
                if body.get("password") != "fixture-password":
                    return self._json(401, {"message": "wrong password"})
                data = b"{}"
                self.send_response(200)
                self.send_header("Set-Cookie", f"_ncfa={NCFA}; Path=/; HttpOnly; SameSite=Lax")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if not self._authed():
                return self._json(401, {"message": "Unauthorized"})
            body = self._body()
            if path == "/api/v3/games":
                return self._json(200, site.new_game(int(body.get("rounds", 3))).state())
            m = re.fullmatch(r"/api/v3/games/(\w+)", path)
            if m and m.group(1) in site.games:
                return self._json(*site.games[m.group(1)].guess(body))
            m = re.fullmatch(r"/gs/api/duels/([\w-]+)/guess", path)
            if m and m.group(1) in site.duels:
                return self._json(*site.duels[m.group(1)].guess(body))
            self._json(404, {"message": "not found"})

    return H


class FixtureServer:
    """``with FixtureServer() as fx:`` serves the fixture on 127.0.0.1:<free port>; ``fx.site`` is the state."""

    def __init__(self, seed: int = 0) -> None:
        self.site = FixtureSite(seed)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.site))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="geoguessr-fixture", daemon=True)

    def __enter__(self) -> FixtureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
