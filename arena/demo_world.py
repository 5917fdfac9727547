"""A small synthetic world (dataset folder) for tests, benchmarks and demos: real places, drawn landscapes.

The images are procedural (sky, hills, road, poles; colours seeded per location and view), so the folder is
tiny and needs no download, while the game still has distinct panoramas to rotate through.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from model.formats.dataset import write_locations_csv, write_manifest

# (lat, lon, country code, country name, town): spread over every continent so distances and scores vary
PLACES = [
    (-33.8731, 151.2065, "AU", "Australia", "Surry Hills"),
    (64.1371, -21.8952, "IS", "Iceland", "Seltjarnarnes"),
    (-1.2841, 36.8219, "KE", "Kenya", "Kilimani"),
    (35.6837, 139.7468, "JP", "Japan", "Chiyoda"),
    (-23.5614, -46.6559, "BR", "Brazil", "Bela Vista"),
    (45.4215, -75.6972, "CA", "Canada", "Centretown"),
    (52.3731, 4.8922, "NL", "Netherlands", "Grachtengordel"),
    (19.4326, -99.1332, "MX", "Mexico", "Cuauhtemoc"),
    (60.1699, 24.9384, "FI", "Finland", "Kluuvi"),
    (-41.2865, 174.7762, "NZ", "New Zealand", "Te Aro"),
    (48.2082, 16.3738, "AT", "Austria", "Innere Stadt"),
    (-34.6037, -58.3816, "AR", "Argentina", "San Nicolas"),
]
VIEWS = [0, 90, 180, 270]


def draw_view(rng: random.Random, size: tuple[int, int] = (640, 400)) -> Image.Image:
    """One procedural street-level view: sky gradient, hills, road with a centre line, roadside poles."""
    w, h = size
    horizon = int(h * rng.uniform(0.45, 0.6))
    top, bottom = (
        np.array([rng.randint(40, 120), rng.randint(110, 170), rng.randint(190, 250)]),
        np.array([225, 232, 240]),
    )
    t = np.linspace(0, 1, horizon)[:, None]
    sky = (top * (1 - t) + bottom * t).astype(np.uint8)
    img = np.zeros((h, w, 3), np.uint8)
    img[:horizon] = sky[:, None, :]
    ground = np.array([rng.randint(60, 140), rng.randint(100, 160), rng.randint(40, 90)], np.uint8)
    img[horizon:] = ground
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    for layer in range(3):  # hills, far to near, darker as they come closer
        shade = tuple(int(c * (0.65 + 0.12 * layer)) for c in ground)
        pts = [(0, horizon)]
        for x in range(0, w + 80, 80):
            pts.append((x, horizon - rng.randint(5, 60 - 15 * layer)))
        pts.append((w, horizon))
        d.polygon(pts, fill=shade)
    cx = w // 2 + rng.randint(-60, 60)
    d.polygon([(cx - 6, horizon), (cx + 6, horizon), (cx + w // 2, h), (cx - w // 2, h)], fill=(88, 88, 92))
    for y in range(horizon + 8, h, 28):  # dashed centre line, wider towards the viewer
        f = (y - horizon) / (h - horizon)
        d.rectangle([cx - 1 - 3 * f, y, cx + 1 + 3 * f, y + 10 * f + 2], fill=(235, 220, 120))
    for side in (-1, 1):
        for k in range(1, 5):
            f = k / 5
            x = cx + side * (30 + f * w * 0.45)
            d.rectangle(
                [x - 1 - 3 * f, horizon - 60 * f - 10, x + 1 + 3 * f, horizon + 40 * f], fill=(70, 60, 50)
            )
    return im


def make_demo_world(
    root: str | Path,
    n_locations: int = 10,
    seed: int = 0,
    split: str = "test",
    size: tuple[int, int] = (640, 400),
    name: str = "demo",
) -> Path:
    """Write a dataset folder with ``n_locations`` places, four views each. The first len(PLACES) are the real
    places; beyond that the list repeats with each point moved by up to half a degree (same country and town
    names: enough for tests that need a bigger pool)."""
    if not 1 <= n_locations <= 100 * len(PLACES):
        raise ValueError(f"n_locations must be in [1, {100 * len(PLACES)}], got {n_locations}")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(n_locations):
        lat, lon, cc, _name, town = PLACES[i % len(PLACES)]
        if i >= len(PLACES):
            lat, lon = lat + rng.uniform(-0.5, 0.5), lon + rng.uniform(-0.5, 0.5)
        loc_id = f"zq{rng.getrandbits(40):010x}"  # 'zq' prefix: never looks like a hex game id
        for v in VIEWS:
            draw_view(rng, size).save(root / "images" / f"{loc_id}_{v}.jpg", quality=85)
        rows.append(
            {
                "id": loc_id,
                "lat": lat,
                "lon": lon,
                "split": split,
                "country": cc,
                "town": town,
                "heading": rng.randint(0, 359),
            }
        )
    write_locations_csv(root / "locations.csv", rows)
    write_manifest(
        root,
        name=name,
        source="synthetic (arena.demo_world)",
        views=VIEWS,
        image_size=size,
        generator={"seed": seed, "n_locations": n_locations},
        timestamp=False,
    )
    return root
