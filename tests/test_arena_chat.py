"""Chat vs bot: the arena's IRC bridge against a real IRC server (Debian's ngircd, started here on 127.0.0.1)
with real viewer clients on sockets, including hostile lines (floods, malformed coordinates, long lines)."""
from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from arena_support import Client

from arena import make_server
from arena.chat import ChatConfig, ChatRoom, IrcBridge, parse_guess
from arena.demo_world import make_demo_world
from arena.rules import score_guess

NGIRCD = shutil.which("ngircd") or ("/usr/sbin/ngircd" if Path("/usr/sbin/ngircd").exists() else None)
SECRET = "oauth:do-not-log-this-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ircd(tmp_path_factory):
    if NGIRCD is None:
        pytest.skip("ngircd is not installed (apt-get install ngircd)")
    root = tmp_path_factory.mktemp("ircd")
    port = _free_port()
    conf = root / "ngircd.conf"
    conf.write_text(f"""[Global]
Name = irc.pigeon.test
Info = pigeon chat test
Listen = 127.0.0.1
Ports = {port}
Password = {SECRET}
MotdPhrase = hello
PidFile = {root}/ngircd.pid
[Limits]
MaxNickLength = 30
MaxConnectionsIP = 0
[Options]
PAM = no
Ident = no
DNS = no
""")
    proc = subprocess.Popen([NGIRCD, "--nodaemon", "--config", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    end = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > end or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"ngircd did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.1)
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(timeout=10)


class Viewer:
    """A chat viewer: a real IRC client on a socket."""

    def __init__(self, addr, nick: str, channel: str = "#pigeon") -> None:
        self.sock = socket.create_connection(addr, timeout=10)
        self.nick, self.channel, self.buf = nick, channel, b""
        self.send(f"PASS {SECRET}")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :viewer")
        self.wait_for(" 001 ")
        self.send(f"JOIN {channel}")
        self.wait_for(" 366 ")

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self.sock.sendall(data + b"\r\n")

    def say(self, text: str | bytes) -> None:
        body = text if isinstance(text, bytes) else text.encode()
        self.send(b"PRIVMSG " + self.channel.encode() + b" :" + body)

    def wait_for(self, marker: str, timeout: float = 10) -> None:
        end = time.monotonic() + timeout
        while marker.encode() not in self.buf:
            if time.monotonic() > end:
                raise TimeoutError(f"{self.nick}: no {marker!r} from the server: {self.buf[-500:]!r}")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"{self.nick}: server closed: {self.buf[-500:]!r}")
            self.buf += chunk
            for line in self.buf.split(b"\r\n"):
                if line.startswith(b"PING"):
                    self.sock.sendall(b"PONG" + line[4:] + b"\r\n")

    def close(self) -> None:
        try:
            self.send("QUIT :bye")
        except OSError:
            pass
        self.sock.close()


def _wait(pred, timeout=15.0, what="condition"):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture()
def arena(tmp_path):
    srv = make_server(make_demo_world(tmp_path / "world", n_locations=8), tmp_path / "arena.sqlite")
    yield srv
    srv.stop()


def test_parse_guess_accepts_points_and_countries_and_rejects_the_rest():
    names = {"fr": "FR", "france": "FR", "new zealand": "NZ"}
    assert parse_guess("!g 48.85, 2.35", names).lat == pytest.approx(48.85)
    assert parse_guess("!g -33.9 151.2", names).lon == pytest.approx(151.2)
    assert parse_guess("!G  New   Zealand", names).country == "NZ"
    assert parse_guess("!guess fr", names).country == "FR"
    for bad in ("!g 91, 0", "!g 0, 181", "!g nan, nan", "!g inf, 0", "!g 1e400, 5", "!g 48.85,", "!g",
                "!g atlantis", "hello !g 1, 2", "!g " + "9" * 400, "!g 1, 2, 3", "!gg 1, 2"):
        assert parse_guess(bad, names) is None, bad


def test_chat_guesses_through_a_real_irc_server_with_hostile_lines(ircd, arena, caplog):
    caplog.set_level(logging.DEBUG)
    api = Client(arena.url)
    host = api.player("Streamer")
    gid = host.ok("POST", "/api/games", {"mode": "classic", "rounds": 2})["id"]
    key = arena.service.overlay_key(gid)

    def board():
        st, raw, _ = api.raw("GET", f"/api/games/{gid}/chat", headers={"X-Overlay-Key": key}, token="")
        assert st == 200, raw
        return json.loads(raw)

    assert api.raw("GET", f"/api/games/{gid}/chat", token="")[0] == 403   # no key, no board
    board()                                                               # the overlay asks: chat follows gid
    bridge = arena.start_chat(ChatConfig(*ircd, channel="#pigeon", nick="pigeonarena", password=SECRET))
    assert bridge.joined.wait(15), "the bridge never joined the channel"
    alice, bob, mallory, eve = (Viewer(ircd, n) for n in ("alice", "bob", "mallory", "eve"))
    try:
        alice.say("!g 48.85, 2.35")
        bob.say("!g FR")
        for _ in range(25):                       # a flood: the first guess counts, the rest do not
            mallory.say("!g -10, -50")
        hostile = [b"!g 91, 0", b"!g nan, nan", b"!g 1e400, 5", b"!g 48.85,", b"!g " + b"9" * 400,
                   b"!g 1, 2 \x01\x02", "!g \u202e48, 2".encode(), b"\xff\xfe!g 1, 1", b"x" * 480]
        for line in hostile:                      # malformed: none of eve's lines is a guess
            eve.say(line)
        alice.say("!g -33.9, 151.2")              # a second guess: ignored, the first one stands
        _wait(lambda: arena.chat.stats["lines"] >= 2 + 1 + 25 + len(hostile), timeout=90, what="every chat line")
        b = board()
        assert b["open_round"] == 1 and b["open_round_guesses"] == 3 and b["rounds"] == []  # hidden while open
        stats = dict(arena.chat.stats)
        # every line reached the bridge (alice 2, bob 1, mallory 25, eve 9); 3 guesses, the other 34 lines dropped
        # as duplicates (alice, mallory), malformed (eve) or over the rate limit (5 lines per viewer per 10 s)
        assert stats["lines"] == 37 and stats["guesses"] == 3
        assert stats["ignored"] + stats["rate_limited"] + stats["duplicate"] == 34 and stats["rate_limited"] >= 4
        # the human guesses: the round closes and the chat is scored like a player
        host.ok("POST", f"/api/games/{gid}/rounds/1/guess", {"lat": 0.0, "lon": 0.0})
        b = board()
        truth = host.ok("GET", f"/api/games/{gid}/rounds/1/result")["truth"]
        got = {g["viewer"]: g for g in b["rounds"][0]["guesses"]}
        assert set(got) == {"alice", "bob", "mallory"}
        km, pts = score_guess(48.85, 2.35, truth["lat"], truth["lon"])
        assert got["alice"]["score"] == pts and got["alice"]["dist_km"] == pytest.approx(km, abs=0.1)
        assert got["mallory"]["lat"] == pytest.approx(-10.0)
        if truth["country"] == "FR":
            assert got["bob"]["score"] == 5000
        else:
            assert got["bob"]["country"] == "FR" and 0 <= got["bob"]["score"] < 5000
        lb = b["leaderboard"]
        assert [r["score"] for r in lb] == sorted((r["score"] for r in lb), reverse=True) and len(lb) == 3
        # a guess after the round closed (before the next one opens) does not count for any round
        alice.say("!g 1, 1")
        _wait(lambda: arena.chat.stats["late"] >= 1, what="the late guess")
        assert board()["rounds"][0]["guesses"] == b["rounds"][0]["guesses"]
    finally:
        for v in (alice, bob, mallory, eve):
            v.close()
    assert SECRET not in caplog.text and SECRET not in repr(bridge.cfg)


def test_bridge_drops_overlong_and_endless_lines_and_keeps_reading(arena):
    """A server (a real TCP socket here) that sends a 100 KB line, an endless one, an endless one whose tail
    poses as another viewer's guess, then a good guess: the three long lines are dropped whole."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    host = Client(arena.url).player("Host")
    gid = host.ok("POST", "/api/games", {"mode": "classic", "rounds": 1})["id"]
    room = ChatRoom(lambda g: arena.service.summary(None, g))
    room.follow(gid)
    seen: list[bytes] = []

    def serve():
        conn, _ = srv.accept()
        conn.settimeout(10)
        data = b""
        while b"USER" not in data:
            data += conn.recv(4096)
        seen.append(data)
        conn.sendall(b":srv 001 pigeonarena :hi\r\n")
        while b"JOIN" not in data:
            data += conn.recv(4096)
        conn.sendall(b":pigeonarena!u@h JOIN #pigeon\r\n")
        conn.sendall(b":eve!u@h PRIVMSG #pigeon :!g 10, 10" + b"0" * 100_000 + b"\r\n")
        conn.sendall(b":eve!u@h PRIVMSG #pigeon :" + b"A" * 40_000)    # no end of line: dropped
        conn.sendall(b"\r\n")
        # an endless line whose tail, after the bridge has dropped what it buffered, looks like another
        # viewer's guess: sent in five reads of 4,096 bytes (past MAX_BUFFER), then the tail; the whole line is
        # dropped
        time.sleep(0.3)
        spoof = b":eve!u@h PRIVMSG #pigeon :" + b"B" * 20_000
        for i in range(0, 20_480, 4096):
            conn.sendall(spoof[i:i + 4096])
            time.sleep(0.1)
        conn.sendall(b":mallory!u@h PRIVMSG #pigeon :!g 1, 2\r\n")
        conn.sendall(b":carol!u@h PRIVMSG #pigeon :!g 12.5, 13.5\r\nPING :abc\r\n")
        while b"PONG :abc" not in data:
            data += conn.recv(4096)
        seen.append(data)
        time.sleep(0.5)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    bridge = IrcBridge(ChatConfig("127.0.0.1", port, "#pigeon", "pigeonarena"), room).start()
    try:
        _wait(lambda: room.stats["guesses"] >= 1, what="carol's guess")
        t.join(timeout=10)
        assert room.stats["guesses"] == 1 and room.stats["ignored"] == 3  # the three long lines, once each
        assert room.board(gid)["open_round_guesses"] == 1
        assert b"PONG :abc" in seen[-1]
    finally:
        bridge.stop()
        srv.close()


def test_chat_config_from_environment_never_shows_the_password():
    assert ChatConfig.from_env({}) is None
    cfg = ChatConfig.from_env({"PIGEON_CHAT_HOST": "irc.chat.twitch.tv", "PIGEON_CHAT_CHANNEL": "#MyStream",
                               "PIGEON_CHAT_NICK": "me", "PIGEON_CHAT_PASSWORD": SECRET, "PIGEON_CHAT_TLS": "1"})
    assert (cfg.port, cfg.channel, cfg.tls) == (6697, "#mystream", True)
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)
    with pytest.raises(ValueError, match="channel"):
        ChatConfig.from_env({"PIGEON_CHAT_HOST": "x", "PIGEON_CHAT_CHANNEL": "nochannel"})
