"""Chat vs bot for streams: viewers guess along in an IRC channel (Twitch chat speaks IRC), as ChatGuessr does.

A viewer sends ``!g LAT, LON`` (or ``!g LAT LON``) or ``!g COUNTRY`` (ISO alpha-2 code or English name) while a
round of the followed game is open. The first valid guess of each viewer per round counts; later ones, guesses
between rounds and malformed ones are ignored (nothing is ever answered in the channel). When the round closes
each guess is scored like a player's: ``round(5000 exp(-d / 1492.7 km))`` with ``d`` the great-circle distance
to the place; a country guess is the best point of that country (0 km when the place is inside it, else the
distance to its nearest border vertex). The chat leaderboard (points over the game's closed rounds) is shown on
the stream overlay next to the bot's belief (``GET /api/games/{id}/chat``, with the overlay key).

Which game: the one whose overlay asked last (the overlay on stream is the game chat sees). Blind games are never
followed (a chat board would tell the human there is a stream, i.e. a bot).

Hostile chat: lines over ``MAX_LINE`` bytes are dropped whole, at most ``RATE_N`` messages per viewer per
``RATE_S`` seconds are read (the rest dropped), at most ``MAX_VIEWERS_PER_ROUND`` guesses per round, nicks are
cut to 25 characters of ``[A-Za-z0-9_]``, coordinates must be finite and in range. Credentials come from the
environment (``PIGEON_CHAT_*``, see ``ChatConfig.from_env``) and the password is never logged.
"""
from __future__ import annotations

import logging
import math
import os
import re
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Callable

from model.geo.geography import geoguessr_score, haversine_km

log = logging.getLogger(__name__)

MAX_LINE = 2048                 # bytes; IRC allows 512 (+ 8191 of IRCv3 tags); longer lines are dropped
MAX_BUFFER = 16384              # unterminated input kept at most this long, then dropped
RATE_N, RATE_S = 5, 10.0        # per viewer: messages read per window
MAX_VIEWERS_PER_ROUND = 10_000
NICK_RE = re.compile(r"[^A-Za-z0-9_]")
NUM = r"[-+]?\d{1,3}(?:\.\d{1,12})?"
COORD_RE = re.compile(rf"^\s*({NUM})\s*[,; ]\s*({NUM})\s*$")
COORD_ONLY_RE = re.compile(rf"^\s*!g(?:uess)?\s+{NUM}\s*[,; ]\s*{NUM}\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ChatGuess:
    """One parsed guess: a point (``lat``/``lon`` degrees) or a ``country`` (ISO alpha-2)."""

    lat: float | None = None
    lon: float | None = None
    country: str | None = None


def parse_guess(text: str, countries: dict[str, str]) -> ChatGuess | None:
    """``!g 48.85, 2.35`` / ``!g 48.85 2.35`` / ``!g FR`` / ``!g france`` -> ChatGuess; anything else (other
    messages, out-of-range or non-finite numbers, unknown countries) -> None. ``countries``: lower-case name or
    code -> ISO alpha-2."""
    text = text.strip()
    if not (text.lower().startswith("!g ") or text.lower().startswith("!guess ")):
        return None
    arg = text.split(None, 1)[1].strip() if len(text.split(None, 1)) > 1 else ""
    if not arg or len(arg) > 64:
        return None
    m = COORD_RE.match(arg)
    if m:
        lat, lon = float(m.group(1)), float(m.group(2))
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return ChatGuess(lat=lat, lon=lon)
    code = countries.get(" ".join(arg.lower().split()))
    return ChatGuess(country=code) if code else None


class CountryShapes:
    """Country names and codes -> ISO alpha-2, and the distance from a point to a country (0 inside), from the
    offline geodata (``model.geo.geodata``); without geodata only ISO codes of the place's country work."""

    def __init__(self, geodata: Any = None) -> None:
        self.geodata = geodata
        self.names: dict[str, str] = {}
        self._verts: dict[str, Any] = {}
        if geodata is not None:
            for code, name in zip(geodata.countries["iso_a2"], geodata.countries["name"]):
                if isinstance(code, str) and len(code) == 2:
                    self.names[code.lower()] = code
                    self.names[str(name).lower()] = code

    @classmethod
    def load(cls) -> CountryShapes:
        try:
            from model.geo.geodata import load_or_none

            return cls(load_or_none("chat country guesses"))
        except Exception as e:  # noqa: BLE001 - chat still takes coordinates
            log.warning("chat: no country data (%s); only coordinates and ISO codes are understood", e)
            return cls(None)

    def distance_km(self, code: str, lat: float, lon: float, truth_country: str | None) -> float:
        """0 when the place is in the country (the round's recorded country, else the polygon test), else the
        distance to the nearest vertex of the country's outline (km)."""
        if truth_country and truth_country.upper() == code:
            return 0.0
        if self.geodata is None:
            return 20_037.5   # half the Earth's circumference: no data, no points
        import numpy as np

        if code not in self._verts:
            geom = self.geodata.countries.loc[self.geodata.countries["iso_a2"] == code, "geometry"]
            pts = []
            for poly in getattr(geom.iloc[0], "geoms", [geom.iloc[0]]) if len(geom) else []:
                pts.append(np.asarray(poly.exterior.coords))
            self._verts[code] = np.concatenate(pts) if pts else np.zeros((0, 2))
        v = self._verts[code]
        if not len(v):
            return 20_037.5
        d = haversine_km(np.full(len(v), lat), np.full(len(v), lon), v[:, 1], v[:, 0])
        return float(np.min(d))


class ChatRoom:
    """Guesses of the chat for the followed game, and their scores once rounds close. Thread-safe.

    ``game_state(gid)`` returns the arena's public game view (``GameService.summary(None, gid)``): the current
    round (``n``, ``closed``) and every closed round's truth."""

    def __init__(self, game_state: Callable[[str], dict[str, Any]], shapes: CountryShapes | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.game_state, self._shapes, self.clock = game_state, shapes, clock
        self.lock = threading.Lock()
        self.game_id: str | None = None
        self.guesses: dict[tuple[str, int], dict[str, ChatGuess]] = defaultdict(dict)   # (game, round) -> nick
        self.recent: dict[str, deque] = defaultdict(deque)
        self.stats = {"lines": 0, "guesses": 0, "ignored": 0, "rate_limited": 0, "late": 0, "duplicate": 0}

    @property
    def shapes(self) -> CountryShapes:
        """Country names and outlines, loaded on first use (the offline geodata; none: ISO codes only)."""
        if self._shapes is None:
            self._shapes = CountryShapes.load()
        return self._shapes

    def follow(self, gid: str) -> None:
        with self.lock:
            self.game_id = gid

    def _rate_ok(self, nick: str) -> bool:
        now, q = self.clock(), self.recent[nick]
        while q and now - q[0] > RATE_S:
            q.popleft()
        if len(q) >= RATE_N:
            return False
        q.append(now)
        if len(self.recent) > 50_000:   # forget idle viewers rather than grow without bound
            for k in [k for k, v in self.recent.items() if not v or now - v[-1] > RATE_S][:25_000]:
                del self.recent[k]
        return True

    def message(self, nick: str, text: str) -> str:
        """Handle one chat line; returns what became of it (for tests and counters): ``guess``, ``ignored``,
        ``rate_limited``, ``late`` (no open round), ``duplicate`` (this viewer already guessed) or ``full``."""
        nick = NICK_RE.sub("", nick)[:25]
        with self.lock:
            self.stats["lines"] += 1
            if not nick:
                return self._count("ignored")
            if not self._rate_ok(nick.lower()):
                return self._count("rate_limited")
            gid = self.game_id
        g = parse_guess(text, self.shapes.names if not COORD_ONLY_RE.match(text) else {})
        if g is None or gid is None:
            return self._count("ignored")
        st = self.game_state(gid)
        rnd = st.get("round")
        if st.get("mode") == "blind" or st.get("status") != "active" or not rnd or rnd.get("closed"):
            return self._count("late")
        with self.lock:
            book = self.guesses[(gid, int(rnd["n"]))]
            if nick.lower() in {k.lower() for k in book}:
                return self._count("duplicate")
            if len(book) >= MAX_VIEWERS_PER_ROUND:
                return self._count("full")
            book[nick] = g
            return self._count("guesses", "guess")

    def _count(self, key: str, out: str | None = None) -> str:
        self.stats[key] = self.stats.get(key, 0) + 1
        return out or key

    def board(self, gid: str, top: int = 10) -> dict[str, Any]:
        """What the overlay shows: per closed round every chat guess with km and points (best first), the
        leaderboard over the game's closed rounds, and how many viewers have guessed in the open round (their
        guesses stay hidden until it closes)."""
        st = self.game_state(gid)
        closed = {r["n"]: r["truth"] for r in st.get("rounds", [])}
        rnd = st.get("round") or {}
        with self.lock:
            books = {n: dict(b) for (g, n), b in self.guesses.items() if g == gid}
        totals: dict[str, dict[str, Any]] = {}
        rounds = []
        for n in sorted(books):
            if n not in closed:
                continue
            t = closed[n]
            scored = []
            for nick, g in books[n].items():
                km = (float(haversine_km(g.lat, g.lon, t["lat"], t["lon"])) if g.country is None
                      else self.shapes.distance_km(g.country, t["lat"], t["lon"], t.get("country")))
                pts = int(geoguessr_score(km))
                scored.append({"viewer": nick, "lat": g.lat, "lon": g.lon, "country": g.country,
                               "dist_km": round(km, 1), "score": pts})
                tot = totals.setdefault(nick, {"viewer": nick, "score": 0, "rounds": 0})
                tot["score"] += pts
                tot["rounds"] += 1
            scored.sort(key=lambda s: (-s["score"], s["viewer"]))
            rounds.append({"n": n, "guesses": scored})
        open_n = rnd.get("n") if rnd and not rnd.get("closed") else None
        leaders = sorted(totals.values(), key=lambda r: (-r["score"], r["viewer"]))[:top]
        return {"game_id": gid, "following": self.game_id == gid, "open_round": open_n,
                "open_round_guesses": len(books.get(open_n, {})) if open_n else 0,
                "rounds": rounds, "leaderboard": leaders, "viewers": len(totals)}


@dataclass(frozen=True)
class ChatConfig:
    """Where the bridge connects. From the environment: ``PIGEON_CHAT_HOST`` (e.g. irc.chat.twitch.tv),
    ``PIGEON_CHAT_PORT`` (6667, or 6697 with ``PIGEON_CHAT_TLS=1``), ``PIGEON_CHAT_CHANNEL`` (``#name``),
    ``PIGEON_CHAT_NICK`` and ``PIGEON_CHAT_PASSWORD`` (Twitch: ``oauth:...``; never logged)."""

    host: str
    port: int
    channel: str
    nick: str
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ChatConfig | None:
        env = os.environ if env is None else env
        host = env.get("PIGEON_CHAT_HOST", "").strip()
        if not host:
            return None
        channel = env.get("PIGEON_CHAT_CHANNEL", "").strip()
        if not re.fullmatch(r"#[^\s,\x07]{1,49}", channel):
            raise ValueError("PIGEON_CHAT_CHANNEL must be an IRC channel such as #mystream")
        tls = env.get("PIGEON_CHAT_TLS", "") in ("1", "true", "yes")
        try:
            port = int(env.get("PIGEON_CHAT_PORT", "6697" if tls else "6667"))
        except ValueError:
            raise ValueError("PIGEON_CHAT_PORT must be a port number") from None
        nick = env.get("PIGEON_CHAT_NICK", "").strip() or f"justinfan{int(time.time()) % 100000}"
        return cls(host, port, channel.lower(), nick, env.get("PIGEON_CHAT_PASSWORD") or None, tls)

    def __repr__(self) -> str:   # never show the password
        return (f"ChatConfig(host={self.host!r}, port={self.port}, channel={self.channel!r}, nick={self.nick!r}, "
                f"tls={self.tls}, password={'***' if self.password else None})")


PRIVMSG_RE = re.compile(r"^(?:@\S+ )?:([^!\s]+)(?:![^\s]*)? PRIVMSG (\S+) :(.*)$")


class IrcBridge:
    """A minimal IRC client in a daemon thread: registers, joins the channel, answers PING, hands every
    PRIVMSG of the channel to ``room.message``; reconnects with backoff (1 s doubling to 30 s) until stopped."""

    def __init__(self, cfg: ChatConfig, room: ChatRoom) -> None:
        self.cfg, self.room = cfg, room
        self._stop = threading.Event()
        self.joined = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="arena-chat", daemon=True)

    def start(self) -> IrcBridge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        s = self._sock
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                self._session()
                delay = 1.0
            except OSError as e:
                log.warning("chat: connection to %s:%d lost (%s); retrying in %.0f s", self.cfg.host, self.cfg.port,
                            type(e).__name__, delay)
            self.joined.clear()
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, 30.0)

    def _send(self, line: str) -> None:
        assert self._sock is not None
        self._sock.sendall((line.replace("\r", "").replace("\n", "") + "\r\n").encode("utf-8"))

    def _session(self) -> None:
        raw = socket.create_connection((self.cfg.host, self.cfg.port), timeout=10)
        sock = ssl.create_default_context().wrap_socket(raw, server_hostname=self.cfg.host) if self.cfg.tls else raw
        self._sock = sock
        try:
            sock.settimeout(1.0)
            if self.cfg.password:
                self._send(f"PASS {self.cfg.password}")
            self._send(f"NICK {self.cfg.nick}")
            self._send(f"USER {self.cfg.nick} 0 * :pigeon arena chat")
            log.info("chat: connecting to %s:%d as %s, channel %s", self.cfg.host, self.cfg.port, self.cfg.nick,
                     self.cfg.channel)
            buf, discarding = b"", False
            while not self._stop.is_set():
                try:
                    data = sock.recv(4096)
                except (socket.timeout, TimeoutError):
                    continue
                if not data:
                    raise ConnectionResetError("server closed the connection")
                buf += data
                if discarding:     # the rest of a dropped line, up to its end, is not a line of its own
                    if b"\n" not in buf:
                        buf = b""
                        continue
                    buf, discarding = buf.split(b"\n", 1)[1], False
                if len(buf) > MAX_BUFFER and b"\n" not in buf:
                    buf, discarding = b"", True      # one endless line: drop it whole
                    self.room._count("ignored")
                    continue
                *lines, buf = buf.split(b"\n")
                for raw_line in lines:
                    if len(raw_line) > MAX_LINE:
                        self.room._count("ignored")
                        continue
                    self._line(raw_line.rstrip(b"\r").decode("utf-8", errors="replace"))
        finally:
            self._sock = None
            sock.close()

    def _line(self, line: str) -> None:
        if line.startswith("PING"):
            self._send("PONG" + line[4:])
            return
        parts = line.split(" ")
        if parts[0] == "ERROR" or (len(parts) > 1 and parts[1] in ("464", "465")):
            text = line.replace(self.cfg.password, "***") if self.cfg.password else line
            log.warning("chat: the server says %s", text[:200])
            return
        if len(parts) > 1 and parts[1] in ("001", "376", "422"):
            self._send(f"JOIN {self.cfg.channel}")
            return
        if len(parts) > 2 and parts[1] == "JOIN" and parts[0][1:].split("!")[0].lower() == self.cfg.nick.lower():
            self.joined.set()
            log.info("chat: joined %s", self.cfg.channel)
            return
        m = PRIVMSG_RE.match(line)
        if m and m.group(2).lower() == self.cfg.channel:
            self.room.message(m.group(1), m.group(3))
