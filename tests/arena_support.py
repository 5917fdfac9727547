"""Helpers shared by the arena tests: a tiny world with leaky image metadata, an HTTP client, a fake clock, and
starting a solo game in a browser page."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from PIL import Image

from arena.demo_world import PLACES, make_demo_world
from model.formats.dataset import load_dataset

COUNTRY_NAMES = {cc: name for _, _, cc, name, _ in PLACES}


def make_leaky_world(root: Path, n: int = 10) -> Path:
    """The demo world, with every view-0 image carrying EXIF text and a JPEG comment that name the place:
    the server must strip both before serving."""
    make_demo_world(root, n_locations=n)
    ds = load_dataset(root)
    for loc in ds.locations:
        path = ds.image_path(loc.id, 0)
        im = Image.open(path)
        exif = Image.Exif()
        exif[0x010E] = (
            f"{loc.aux['town']} {loc.aux['country']} {loc.lat} {loc.lon} {path.name}"  # ImageDescription
        )
        im.save(path, quality=85, exif=exif.tobytes(), comment=f"{loc.id} {loc.aux['town']}".encode())
    return root


class FakeClock:
    """A settable clock for GameService: tests move time instead of sleeping."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Client:
    """Minimal JSON client over urllib (keeps the tests free of extra HTTP libraries)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url, self.token = base_url, token

    def raw(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        h = {"Content-Type": "application/json", **(headers or {})}
        tok = token if token is not None else self.token
        if tok:
            h["X-Player-Token"] = tok
        req = urllib.request.Request(self.base_url + path, method=method, data=data, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        status, raw, _ = self.raw(method, path, data, token=token)
        return status, (json.loads(raw) if raw else None)

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, data = self.call(method, path, body, token)
        assert 200 <= status < 300, f"{method} {path} -> {status} {data}"
        return data

    def player(self, name: str, kind: str = "human", bot_token: str | None = None) -> "Client":
        """A new player; bots show the operator's token (default: the one an in-process arena published in
        $PIGEON_ARENA_BOT_TOKEN)."""
        headers = {}
        if kind == "bot":
            headers["X-Bot-Token"] = bot_token or os.environ["PIGEON_ARENA_BOT_TOKEN"]
        status, raw, _ = self.raw(
            "POST", "/api/players", json.dumps({"name": name, "kind": kind}).encode(), headers, token=""
        )
        assert status == 201, f"POST /api/players -> {status} {raw[:200]!r}"
        p = json.loads(raw)
        c = Client(self.base_url, p["token"])
        c.id, c.name = p["id"], p["name"]  # type: ignore[attr-defined]
        return c


def truth_patterns(
    lat: float, lon: float, country: str, town: str, loc_id: str
) -> list[tuple[str, re.Pattern]]:
    """Regexes that would reveal a location: coordinates in several roundings (and truncations, and micro-
    degrees), the country code (upper case, whole word), its English name, the town and the location id
    (which is also the stem of the dataset's image file names)."""
    pats: list[tuple[str, re.Pattern]] = []
    for what, v in (("lat", lat), ("lon", lon)):
        texts = {repr(v), repr(abs(v)), f"{round(v * 1e6)}", f"{round(abs(v) * 1e6)}"}
        for d in (1, 2, 3, 4):
            texts.add(f"{abs(v):.{d}f}")
            texts.add(f"{int(abs(v) * 10**d) / 10**d:.{d}f}")  # truncated
        for t in texts:
            pats.append((f"{what} {t}", re.compile(rf"(?<![0-9.]){re.escape(t)}(?![0-9])".encode())))
    pats.append(("country code", re.compile(rf"\b{country}\b".encode())))
    pats.append(("country name", re.compile(re.escape(COUNTRY_NAMES[country]).encode(), re.I)))
    pats.append(("town", re.compile(re.escape(town).encode(), re.I)))
    pats.append(("location id", re.compile(re.escape(loc_id).encode(), re.I)))
    return pats


def find_leaks(body: bytes, patterns: list[tuple[str, re.Pattern]]) -> list[str]:
    return [what for what, p in patterns if p.search(body)]


def start_solo_game(page, url: str, name: str) -> str:
    """In a Playwright page: the arena's home page, a new player ``name``, a solo game; returns the game's id."""
    page.goto(url + "/")
    page.fill("[data-qa=player-name]", name)
    page.click("[data-qa=create-player]")
    page.click("[data-qa=start-game-button]")
    page.wait_for_url(re.compile(r"/play/[0-9a-f]{16}$"))
    return page.url.rsplit("/", 1)[1]
