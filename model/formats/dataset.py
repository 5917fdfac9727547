"""The dataset folder format shared by the renderer, the importers, training, evaluation and the arena.

A dataset is a folder::

    DIR/manifest.json       {"format": "pigeon-dataset", "version": 1, "views": [0, 90, 180, 270], ...,
                             "files": {"locations.csv": {"sha256": ..., "bytes": ...}}}
    DIR/locations.csv       one row per location: id, lat, lon, split, + auxiliary columns
    DIR/images/<id>_<view>.jpg   one image per (location, view); view = heading offset in degrees

``id`` is opaque (it must not reveal the location). ``heading`` is the compass heading of view 0, so view ``v``
faces ``(heading + v) % 360``. Single-image datasets (photos) have ``views == [0]``.
The reader validates the manifest (:mod:`model.formats.manifest`; older folders listed a bare sha256
string) and the CSV and fails with a ``FormatError`` naming the file and the problem.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from model.formats import manifest as mf
from model.formats.manifest import FormatError

FORMAT = "pigeon-dataset"
VERSION = 1
SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("id", "lat", "lon", "split")
AUX_COLUMNS = ("country", "admin1", "town", "koppen", "elevation_m", "land_cover", "driving_side", "month", "heading")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
            raise FormatError(f"unknown split {name!r}; expected one of {SPLITS}")
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
        raise FormatError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise FormatError(f"{where}: {what} {text!r} is not finite")
    return v


def read_locations_csv(path: Path) -> list[Location]:
    if not path.is_file():
        raise FormatError(f"{path} not found")
    locs: list[Location] = []
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in cols]
        if missing:
            raise FormatError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(cols) or 'none'})")
        for n, row in enumerate(reader, start=2):
            where = f"{path}:{n}"
            loc_id = (row["id"] or "").strip()
            if not _ID_RE.match(loc_id):
                raise FormatError(f"{where}: bad id {loc_id!r} (letters, digits, _ and - only, 1-64 chars)")
            if loc_id in seen:
                raise FormatError(f"{where}: duplicate id {loc_id!r}")
            seen.add(loc_id)
            lat = _parse_float(row["lat"], "lat", where)
            lon = _parse_float(row["lon"], "lon", where)
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise FormatError(f"{where}: coordinates ({lat}, {lon}) out of range")
            split = (row["split"] or "").strip()
            if split not in SPLITS:
                raise FormatError(f"{where}: split {split!r} is not one of {SPLITS}")
            aux = {k: v for k, v in row.items() if k not in REQUIRED_COLUMNS and k is not None}
            locs.append(Location(loc_id, lat, lon, split, aux))
    return locs


def load_dataset(root: str | Path, check_images: bool = False) -> Dataset:
    """Read and validate a dataset folder. ``check_images`` also verifies every image file exists."""
    root = Path(root)
    manifest = mf.read_manifest(root, "dataset", VERSION)
    mpath = root / mf.MANIFEST_FILE
    views = manifest.get("views", [0, 90, 180, 270])
    if not (isinstance(views, list) and views and all(isinstance(v, int) for v in views)):
        raise FormatError(f"{mpath}: 'views' must be a non-empty list of integer headings")
    locs = read_locations_csv(root / "locations.csv")
    if "locations.csv" in manifest["files"]:
        mf.verify_files(root, manifest, ["locations.csv"])
    ds = Dataset(root, manifest, locs)
    if check_images:
        missing = [str(p) for l in locs for p in ds.image_paths(l.id) if not p.is_file()]
        if missing:
            raise FormatError(f"{len(missing)} image file(s) missing, first: {missing[0]}")
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
        **(extra or {}),
    }
    return mf.write_manifest(root, "dataset", VERSION, manifest, ["locations.csv"])
