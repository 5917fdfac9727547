"""Screenshot of the stream overlay with the chat board and the bot's belief, for the docs.

Starts ngircd (Debian package) on loopback, the arena on the demo holdout with its chat bridge, a bot seat (API)
that plays round 1 and posts its belief in round 2, and a few viewers who guess with `!g` in both rounds; then
screenshots /overlay/<game>#key=... in headless Chromium (1280x720, a grey page background so the transparent
overlay can be read).

    python scripts/capture_overlay_chat.py --out docs/screenshots/overlay-chat.png
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from arena import make_server
from arena.chat import ChatConfig
from bot.config import BrowserConfig
from bot.driver import open_browser
from model.paths import project_path

VIEWERS = {"geo_wizard": ("!g 50.1, 8.6", "!g 47.5, 19.0"), "mapnerd42": ("!g Germany", "!g HU"),
           "lurker": ("!g 40.4, -3.7", "!g 52.2, 21.0"), "rainbowroad": ("!g 52.5, 13.4", "!g 45.8, 16.0"),
           "pin_drop": ("!g 35.7, 139.7", "!g 48.2, 16.4")}


def _call(url: str, method: str, path: str, body=None, headers=None):
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def _viewer(port: int, nick: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :v\r\nJOIN #pigeon\r\n".encode())
    buf = b""
    while b" 366 " not in buf:
        buf += s.recv(4096)
    return s


def _until(pred, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("the chat guesses did not all arrive")
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    ngircd = shutil.which("ngircd") or "/usr/sbin/ngircd"
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        conf = Path(tmp) / "ngircd.conf"
        conf.write_text(f"[Global]\nName = irc.local\nInfo = x\nListen = 127.0.0.1\nPorts = {port}\n"
                        f"PidFile = {tmp}/pid\nMotdPhrase = hi\n[Limits]\nMaxConnectionsIP = 0\nMaxNickLength = 30\n[Options]\nPAM = no\nIdent = no\nDNS = no\n")
        ircd = subprocess.Popen([ngircd, "--nodaemon", "--config", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        srv = None
        try:
            time.sleep(1.0)
            srv = make_server(project_path("checkpoints/demo/holdout"), Path(tmp) / "a.sqlite", split="test")
            url = srv.url
            bridge = srv.start_chat(ChatConfig("127.0.0.1", port, "#pigeon", "pigeonarena"))
            assert bridge.joined.wait(30), "the chat bridge did not join"
            bot = _call(url, "POST", "/api/players", {"name": "pigeon-bot", "kind": "bot"},
                        {"X-Bot-Token": os.environ["PIGEON_ARENA_BOT_TOKEN"]})
            h = {"X-Player-Token": bot["token"]}
            gid = _call(url, "POST", "/api/games", {"mode": "classic", "rounds": 5}, h)["id"]
            key = srv.service.overlay_key(gid)
            _call(url, "GET", f"/api/games/{gid}/chat", None, {"X-Overlay-Key": key})   # the overlay follows gid
            socks = {n: _viewer(port, n) for n in VIEWERS}
            for n, (g1, _) in VIEWERS.items():
                socks[n].sendall(f"PRIVMSG #pigeon :{g1}\r\n".encode())
            _until(lambda: srv.chat.stats["guesses"] >= len(VIEWERS))
            _call(url, "POST", f"/api/games/{gid}/rounds/1/guess", {"lat": 48.2, "lon": 11.6}, h)
            _call(url, "POST", f"/api/games/{gid}/next", None, h)
            heat = [[48.0 + dy, 10.0 + dx, 0.02 + 0.01 * ((dx + dy) % 3)] for dx in range(-6, 7, 2)
                    for dy in range(-4, 5, 2)]
            topk = [{"lat": 47.5, "lon": 19.0, "p": 0.31}, {"lat": 48.2, "lon": 16.4, "p": 0.22},
                    {"lat": 50.1, "lon": 14.4, "p": 0.12}, {"lat": 45.8, "lon": 16.0, "p": 0.08}]
            _call(url, "POST", "/api/predictions", {"game_id": gid, "round": 2, "topk": topk, "heat": heat}, h)
            for n, (_, g2) in VIEWERS.items():
                socks[n].sendall(f"PRIVMSG #pigeon :{g2}\r\n".encode())
            _until(lambda: srv.chat.stats["guesses"] >= 2 * len(VIEWERS))
            with open_browser(BrowserConfig()) as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(f"{url}/overlay/{gid}#key={key}")
                page.add_style_tag(content="html, body.overlay-page { background: #5b6470 !important; }")
                page.wait_for_selector("[data-qa=overlay-chat]:not([hidden])", timeout=15000)
                page.wait_for_selector("[data-qa=overlay-topk]:not([hidden])", timeout=15000)
                page.wait_for_timeout(1500)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
            for s in socks.values():
                s.close()
            print(f"wrote {args.out}")
        finally:
            if srv is not None:
                srv.stop()
            ircd.terminate()


if __name__ == "__main__":
    main()
