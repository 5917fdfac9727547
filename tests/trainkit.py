"""Tiny datasets and configs for the training tests: coloured noise images around a few real cities."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from model.formats.dataset import write_locations_csv, write_manifest

# (lat, lon, ISO a2, admin1, town, koppen, driving side, RGB tint)
CITIES = [
    (48.85, 2.35, "FR", "Ile-de-France", "Paris", "Cfb", "right", (200, 40, 40)),
    (35.68, 139.69, "JP", "Tokyo", "Tokyo", "Cfa", "left", (40, 200, 40)),
    (-23.55, -46.63, "BR", "Sao Paulo", "Sao Paulo", "Cfa", "right", (40, 40, 200)),
    (-33.87, 151.21, "AU", "New South Wales", "Sydney", "Cfa", "left", (200, 200, 40)),
]
SPLIT_CYCLE = ["train"] * 6 + ["val", "test"]


def make_dataset(root: Path, n: int = 40, size: int = 48, views=(0, 90, 180, 270), seed: int = 0) -> Path:
    """A dataset folder with ``n`` locations (CSV order alternates cities) and len(views) JPEGs each."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        lat, lon, cc, adm, town, kg, side, tint = CITIES[i % len(CITIES)]
        loc_id = f"loc{i:04d}"
        rows.append(
            {
                "id": loc_id,
                "lat": round(lat + rng.normal(0, 0.3), 5),
                "lon": round(lon + rng.normal(0, 0.3), 5),
                "split": SPLIT_CYCLE[(i // len(CITIES)) % len(SPLIT_CYCLE)],
                "country": cc,
                "admin1": adm,
                "town": town,
                "koppen": kg,
                "elevation_m": round(float(rng.uniform(0, 500)), 1),
                "land_cover": 13,
                "driving_side": side,
                "month": int(rng.integers(1, 13)),
                "heading": round(float(rng.uniform(0, 360)), 1),
            }
        )
        for v in views:
            noise = rng.integers(0, 60, (size, size, 3))
            arr = np.clip(np.array(tint)[None, None] * (0.6 + 0.4 * v / 360) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / "images" / f"{loc_id}_{v}.jpg", quality=90)
    write_locations_csv(root / "locations.csv", rows)
    write_manifest(root, name="tiny", source="test", views=list(views), image_size=(size, size))
    return root


TINY_OVERRIDES = [
    "backbone.image_size=32", "geocells.method=naive", "geocells.min_cell_size=1", "geocells.max_cell_size=6",
    "pretrain.epochs=1", "pretrain.batch_size=8", "pretrain.views=one", "pretrain.lr=1e-3",
    "pretrain.warmup_ratio=0.0", "head.epochs=6", "head.batch_size=8", "head.lr=1e-2", "head.patience=0",
    "runtime.device=cpu", "runtime.batch_size=16",
]
