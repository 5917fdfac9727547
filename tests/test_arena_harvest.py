"""Answers that cannot be harvested: no location twice for a player until the pool is used up, views
re-encoded per game (different bytes for the same place), and a doctored source file served clean."""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image

from arena_support import Client
from arena import make_server
from arena.demo_world import make_demo_world
from model.formats.dataset import load_dataset


def rounds_of(arena, gid):
    with arena.db.read() as c:
        return [r[0] for r in c.execute("SELECT location_id FROM rounds WHERE game_id=? ORDER BY n", (gid,))]


def play_classic(p, gid, n_rounds):
    for n in range(1, n_rounds + 1):
        p.ok("POST", f"/api/games/{gid}/rounds/{n}/guess", {"lat": 0.0, "lon": 0.0})
        if n < n_rounds:
            p.ok("POST", f"/api/games/{gid}/next")


def test_no_location_twice_across_ten_games_until_the_pool_is_used_up(tmp_path):
    world = make_demo_world(tmp_path / "w", n_locations=32, size=(96, 64))
    with make_server(world, tmp_path / "a.sqlite", rng=random.Random(1), split="all") as arena:
        p = Client(arena.url).player("collector")
        seen = []
        for _ in range(10):
            gid = p.ok("POST", "/api/games", {"mode": "classic", "rounds": 3})["id"]
            play_classic(p, gid, 3)
            seen += rounds_of(arena, gid)
        assert len(seen) == 30 and len(set(seen)) == 30  # 10 games, no repeat
        gid = p.ok("POST", "/api/games", {"mode": "classic", "rounds": 3})["id"]
        nxt = rounds_of(arena, gid)
        assert len(set(nxt) - set(seen)) == 2  # the two unseen ones first, then the pool starts over
        # a duel re-draws at join time around both players' history
        q = Client(arena.url).player("friend")
        duel = q.ok("POST", "/api/games", {"mode": "duel", "rounds": 2})["id"]
        p.ok("POST", f"/api/games/{duel}/join")
        assert not set(rounds_of(arena, duel)) & set(nxt[:1] + seen[:0])  # the only unseen one went to game 11


def test_same_location_in_two_games_gets_different_bytes(tmp_path):
    world = make_demo_world(tmp_path / "w", n_locations=1, size=(160, 100))
    with make_server(world, tmp_path / "a.sqlite", rng=random.Random(2), split="all") as arena:
        a, b = Client(arena.url).player("a"), Client(arena.url).player("b")
        ga = a.ok("POST", "/api/games", {"mode": "classic", "rounds": 1})["id"]
        gb = b.ok("POST", "/api/games", {"mode": "classic", "rounds": 1})["id"]
        assert rounds_of(arena, ga) == rounds_of(arena, gb)
        for k in range(4):
            sa, ba, _ = a.raw("GET", f"/api/games/{ga}/rounds/1/views/{k}")
            sb, bb, _ = b.raw("GET", f"/api/games/{gb}/rounds/1/views/{k}")
            assert sa == sb == 200 and ba != bb
            assert a.raw("GET", f"/api/games/{ga}/rounds/1/views/{k}")[1] == ba  # stable within a game
            pa = np.asarray(Image.open(io.BytesIO(ba)).convert("RGB"), dtype=float)
            pb = np.asarray(Image.open(io.BytesIO(bb)).convert("RGB"), dtype=float)
            assert pa.shape == pb.shape and np.abs(pa - pb).mean() < 3.0  # the same picture to the eye


def test_doctored_image_with_exif_and_trailer_is_served_clean(tmp_path):
    world = make_demo_world(tmp_path / "w", n_locations=2, size=(160, 100))
    ds = load_dataset(world)
    secret = b"LAT=-33.8731;LON=151.2065;ANSWER"
    for loc in ds.locations:
        for v in ds.views:
            path = ds.image_path(loc.id, v)
            im = Image.open(path)
            exif = Image.Exif()
            gps = {1: "S", 2: (33.0, 52.0, 23.0), 3: "E", 4: (151.0, 12.0, 23.0)}
            exif[0x8825] = gps
            exif[0x010E] = f"{loc.id} {loc.aux['town']}"
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85, exif=exif.tobytes(), comment=secret)
            appended = io.BytesIO()
            im.save(appended, "JPEG", exif=exif.tobytes())
            path.write_bytes(buf.getvalue() + secret + appended.getvalue())  # trailer + a second JPEG
            raw = path.read_bytes()
            assert secret in raw and b"Exif" in raw and raw.count(b"\xff\xd9") >= 2  # really doctored
    with make_server(world, tmp_path / "a.sqlite", rng=random.Random(3), split="all") as arena:
        p = Client(arena.url).player("looker")
        gid = p.ok("POST", "/api/games", {"mode": "classic", "rounds": 2})["id"]
        for n in (1, 2):
            for k in range(4):
                status, body, headers = p.raw("GET", f"/api/games/{gid}/rounds/{n}/views/{k}")
                assert status == 200 and headers["content-type"] == "image/jpeg"
                assert secret not in body and b"Exif" not in body and b"ANSWER" not in body
                assert body.endswith(b"\xff\xd9") and body.count(b"\xff\xd9") == 1  # nothing after the end
                assert not any(loc.id.encode() in body for loc in ds.locations)
                im = Image.open(io.BytesIO(body))
                assert not im.getexif() and "comment" not in im.info and im.size == (160, 100)
            if n == 1:
                play_classic(p, gid, 1)
                p.ok("POST", f"/api/games/{gid}/next")
