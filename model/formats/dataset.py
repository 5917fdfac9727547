"""The dataset folder format shared by the renderer, the importers, training, evaluation and the arena.

A dataset is a folder::

    DIR/manifest.json       {"format": "pigeon-dataset", "version": 1, "views": [0, 90, 180, 270], ...}
    DIR/locations.csv       one row per location: id, lat, lon, split, + auxiliary columns
    DIR/images/<id>_<view>.jpg   one image per (location, view); view = heading offset in degrees

``id`` is opaque (it must not reveal the location). ``heading`` is the compass heading of view 0, so view ``v``
faces ``(heading + v) % 360``. Single-image datasets (photos) have ``views == [0]``.
The reader validates the manifest and the CSV and fails with a message naming the file and the problem.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

FORMAT = "pigeon-dataset"
VERSION = 1
SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("id", "lat", "lon", "split")
AUX_COLUMNS = ("country", "admin1", "town", "koppen", "elevation_m", "land_cover", "driving_side", "month", "heading")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class DatasetError(ValueError):
    """A dataset folder is missing, malformed, or inconsistent with its manifest."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Location:
    id: str
    lat: float
    lon: float
    split: str
    aux: dict[str, str] = field(default_factory=dict)


@dataclass
class Dataset:
    """A loaded dataset folder: ``locations`` in CSV order, plus the manifest."""

    root: Path
    manifest: dict[str, Any]
    locations: list[Location]

    @property
    def views(self) -> list[int]:
        return list(self.manifest.get("views", [0, 90, 180, 270]))

    def image_path(self, loc_id: str, view: int) -> Path:
        return self.root / "images" / f"{loc_id}_{int(view)}.jpg"

    def image_paths(self, loc_id: str) -> list[Path]:
        return [self.image_path(loc_id, v) for v in self.views]

    def split(self, name: str) -> list[Location]:
        if name not in SPLITS:
            raise DatasetError(f"unknown split {name!r}; expected one of {SPLITS}")
        return [loc for loc in self.locations if loc.split == name]

    def by_id(self) -> dict[str, Location]:
        return {loc.id: loc for loc in self.locations}

    def latlon(self, split: str | None = None):
        import numpy as np

        locs = self.locations if split is None else self.split(split)
        return np.array([[l.lat, l.lon] for l in locs], dtype=np.float64).reshape(-1, 2)


def _parse_float(text: str, what: str, where: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise DatasetError(f"{where}: {what} {text!r} is not finite")
    return v


def read_locations_csv(path: Path) -> list[Location]:
    if not path.is_file():
        raise DatasetError(f"{path} not found")
    locs: list[Location] = []
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in cols]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(cols) or 'none'})")
        for n, row in enumerate(reader, start=2):
            where = f"{path}:{n}"
            loc_id = (row["id"] or "").strip()
            if not _ID_RE.match(loc_id):
                raise DatasetError(f"{where}: bad id {loc_id!r} (letters, digits, _ and - only, 1-64 chars)")
            if loc_id in seen:
                raise DatasetError(f"{where}: duplicate id {loc_id!r}")
            seen.add(loc_id)
            lat = _parse_float(row["lat"], "lat", where)
            lon = _parse_float(row["lon"], "lon", where)
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise DatasetError(f"{where}: coordinates ({lat}, {lon}) out of range")
            split = (row["split"] or "").strip()
            if split not in SPLITS:
                raise DatasetError(f"{where}: split {split!r} is not one of {SPLITS}")
            aux = {k: v for k, v in row.items() if k not in REQUIRED_COLUMNS and k is not None}
            locs.append(Location(loc_id, lat, lon, split, aux))
    return locs


def load_dataset(root: str | Path, check_images: bool = False) -> Dataset:
    """Read and validate a dataset folder. ``check_images`` also verifies every image file exists."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise DatasetError(f"{root} is not a pigeon dataset: manifest.json is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{mpath}: not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{mpath}: 'format' must be {FORMAT!r}")
    if manifest.get("version") != VERSION:
        raise DatasetError(f"{mpath}: unsupported version {manifest.get('version')!r} (this pigeon reads {VERSION})")
    views = manifest.get("views", [0, 90, 180, 270])
    if not (isinstance(views, list) and views and all(isinstance(v, int) for v in views)):
        raise DatasetError(f"{mpath}: 'views' must be a non-empty list of integer headings")
    locs = read_locations_csv(root / "locations.csv")
    expected = manifest.get("files", {}).get("locations.csv")
    if expected and sha256_file(root / "locations.csv") != expected:
        raise DatasetError(f"{root / 'locations.csv'} does not match the sha256 in manifest.json (file changed or corrupt)")
    ds = Dataset(root, manifest, locs)
    if check_images:
        missing = [str(p) for l in locs for p in ds.image_paths(l.id) if not p.is_file()]
        if missing:
            raise DatasetError(f"{len(missing)} image file(s) missing, first: {missing[0]}")
    return ds


def write_locations_csv(path: Path, rows: Iterable[dict[str, Any]], extra_columns: Iterable[str] = AUX_COLUMNS) -> None:
    cols = list(REQUIRED_COLUMNS) + [c for c in extra_columns if c not in REQUIRED_COLUMNS]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in cols})


def write_manifest(root: Path, *, name: str, source: str, views: list[int], image_size: tuple[int, int] | None,
                   generator: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                   timestamp: bool = True) -> dict[str, Any]:
    """Write ``manifest.json`` for a folder whose ``locations.csv`` is already written; returns the manifest."""
    locs = read_locations_csv(root / "locations.csv")
    counts = {s: sum(1 for l in locs if l.split == s) for s in SPLITS}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "source": source,
        # deterministic builds (same seed -> byte-identical folder) pass timestamp=False
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if timestamp else None,
        "views": list(views),
        "image_size": list(image_size) if image_size else None,
        "counts": {"locations": len(locs), **counts},
        "generator": generator or {},
        "files": {"locations.csv": sha256_file(root / "locations.csv")},
        **(extra or {}),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return manifest
