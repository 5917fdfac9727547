"""Importers that turn real photos into the dataset folder format (one view per location, ``views == [0]``).

* ``import_osv5m``: an OSV-5M-style CSV (``id, latitude, longitude`` + optional columns such as
  ``captured_at``) plus a folder holding ``<id>.jpg`` (searched recursively, as OSV-5M shards its images).
* ``import_exif``: a folder of geotagged photos; position from the EXIF GPS IFD, month from
  ``DateTimeOriginal``, heading from ``GPSImgDirection``.

Images are re-encoded as JPEG without any metadata (EXIF GPS would give the answer away), upright (EXIF
orientation applied) and optionally downscaled. Auxiliary columns come from ``model.geo.geodata.annotate``; splits
follow the same seeded geographic-block rule as the renderer. A bad row or image is skipped and counted,
never fatal; the report says how many and why.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from model.formats.dataset import AUX_COLUMNS, SPLITS, write_locations_csv, write_manifest
from world.build import fresh_out, location_row
from world.config import SplitConfig
from world.sampler import assign_splits

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
_ID_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # the dataset format's id rule


@dataclass
class ImportReport:
    """What an import did: rows written and skipped items by reason (with a few examples)."""

    imported: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, what: str) -> None:
        self.skipped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 3:
            ex.append(what)
        log.warning("skipped %s: %s", what, reason)


@dataclass(frozen=True)
class _Record:
    src: Path
    lat: float
    lon: float
    key: str  # original id, for the output id
    month: int | None
    heading: float | None


def _valid_latlon(lat: float, lon: float) -> bool:
    return (
        math.isfinite(lat)
        and math.isfinite(lon)
        and -90 <= lat <= 90
        and -180 <= lon <= 180
        and (lat, lon) != (0.0, 0.0)
    )


def _month_from(value: str) -> int | None:
    """Month from an epoch (s or ms) or an ISO-like date string; None if unparsable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        t = float(text)
        return datetime.fromtimestamp(t / 1000.0 if t > 1e11 else t, tz=timezone.utc).month
    except (ValueError, OverflowError, OSError):
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y:%m:%d %H:%M:%S"):
        try:
            return datetime.strptime(text[:19], fmt).month
        except ValueError:
            continue
    return None


def _index_images(images_dir: Path) -> dict[str, Path]:
    """Stem -> path for every image below ``images_dir`` (first one wins)."""
    if not images_dir.is_dir():
        raise FileNotFoundError(f"images folder {images_dir} does not exist")
    index: dict[str, Path] = {}
    for path in sorted(images_dir.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            index.setdefault(path.stem, path)
    return index


def read_osv5m_csv(csv_path: Path, images_dir: Path, report: ImportReport) -> list[_Record]:
    """Rows of an OSV-5M-style CSV whose coordinates are valid and whose image exists."""
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV {csv_path} does not exist")
    index = _index_images(images_dir)
    records = []
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in ("id", "latitude", "longitude") if c not in cols]
        if missing:
            raise ValueError(
                f"{csv_path}: missing column(s) {', '.join(missing)} "
                f"(an OSV-5M CSV has id, latitude, longitude; this one has {', '.join(cols) or 'none'})"
            )
        for n, row in enumerate(reader, start=2):
            key = (row["id"] or "").strip()
            try:
                lat, lon = float(row["latitude"]), float(row["longitude"])
            except (TypeError, ValueError):
                report.skip("bad coordinates", f"{csv_path.name}:{n}")
                continue
            if not key or not _valid_latlon(lat, lon):
                report.skip("bad coordinates" if key else "empty id", f"{csv_path.name}:{n}")
                continue
            src = index.get(key)
            if src is None:
                report.skip("image not found", f"{key}.jpg")
                continue
            records.append(_Record(src, lat, lon, key, _month_from(row.get("captured_at", "")), None))
    return records


def _rational(x) -> float:
    return float(x[0]) / float(x[1]) if isinstance(x, tuple) else float(x)


def exif_position(img: Image.Image) -> tuple[float, float, int | None, float | None] | None:
    """(lat, lon, month, heading) from an image's EXIF, or None without GPS coordinates."""
    exif = img.getexif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if not gps or 2 not in gps or 4 not in gps:
        return None

    def dms(v) -> float:  # noqa: E306
        d, m, s = (_rational(t) for t in v)
        return d + m / 60.0 + s / 3600.0

    lat, lon = dms(gps[2]), dms(gps[4])
    if str(gps.get(1, "N")).upper().startswith("S"):
        lat = -lat
    if str(gps.get(3, "E")).upper().startswith("W"):
        lon = -lon
    heading = _rational(gps[17]) % 360.0 if 17 in gps else None
    when = exif.get_ifd(ExifTags.IFD.Exif).get(36867) or exif.get(306)
    return lat, lon, _month_from(str(when)) if when else None, heading


def read_exif_folder(images_dir: Path, report: ImportReport) -> list[_Record]:
    """Geotagged photos below ``images_dir``."""
    records = []
    for key, path in _index_images(images_dir).items():
        try:
            with Image.open(path) as img:
                pos = exif_position(img)
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            ZeroDivisionError,
            TypeError,
            IndexError,
        ):
            report.skip("bad image or EXIF", path.name)
            continue
        if pos is None:
            report.skip("no GPS in EXIF", path.name)
            continue
        lat, lon, month, heading = pos
        if not _valid_latlon(lat, lon):
            report.skip("bad GPS coordinates", path.name)
            continue
        records.append(_Record(path, lat, lon, key, month, heading))
    return records


def _convert(src: Path, dst: Path, max_side: int | None, quality: int) -> tuple[int, int]:
    """Re-encode ``src`` as a metadata-free upright RGB JPEG at ``dst``; returns its size."""
    with Image.open(src) as img:
        img.load()
        img = ImageOps.exif_transpose(img).convert("RGB")
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.LANCZOS)
    img.save(dst, format="JPEG", quality=quality)
    return img.size


def _convert_all(records: list[_Record], out: Path, report: ImportReport, max_side: int | None, quality: int,
                 id_from: str, progress) -> tuple[list[tuple[str, _Record]], set]:
    """Re-encode every readable, non-duplicate image; returns ((id, record) kept, image sizes seen)."""
    kept, sizes, seen = [], set(), set()
    for rec in records:
        if id_from == "key":  # keep dataset ids (OSV-5M's are opaque numbers) unless the format forbids them
            loc_id = rec.key if _ID_OK.match(rec.key) else hashlib.sha1(rec.key.encode()).hexdigest()[:16]
        else:  # file names may tell the place ("paris.jpg"): hash the content instead
            loc_id = hashlib.sha1(rec.src.read_bytes()).hexdigest()[:16]
        if loc_id in seen:
            report.skip("duplicate", rec.src.name)
            continue
        try:
            sizes.add(_convert(rec.src, out / "images" / f"{loc_id}_0.jpg", max_side, quality))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            report.skip("unreadable image", rec.src.name)
            continue
        finally:
            if progress:
                progress(1)
        seen.add(loc_id)
        kept.append((loc_id, rec))
    return kept, sizes


def write_import(records: list[_Record], out: Path, report: ImportReport, *, name: str, source: str,
                 seed: int, split: str, split_cfg: SplitConfig, max_side: int | None, quality: int,
                 id_from: str, geo=None, progress: Callable[[int], None] | None = None) -> dict:
    """Convert images, annotate, split and write the dataset folder; returns the manifest."""
    kept, sizes = _convert_all(records, out, report, max_side, quality, id_from, progress)
    if not kept:
        why = dict(report.skipped) or "no inputs found"
        raise ValueError(f"nothing to import: every input was skipped ({why})")
    lat = np.array([r.lat for _, r in kept])
    lon = np.array([r.lon for _, r in kept])
    if geo is None:
        from model.geo import geodata

        geo = geodata.load()
    ann = geo.annotate(lat, lon)
    splits = assign_splits(lat, lon, seed, split_cfg) if split == "auto" else np.full(len(kept), split)
    rows = [location_row(loc_id, rec.lat, rec.lon, splits[i], ann, i, rec.month, rec.heading)
            for i, (loc_id, rec) in enumerate(kept)]
    write_locations_csv(out / "locations.csv", rows, AUX_COLUMNS)
    report.imported = len(rows)
    generator = {"tool": f"pigeon world {source}", "seed": seed, "split": split, "max_side": max_side,
                 "quality": quality, "skipped": dict(report.skipped)}
    return write_manifest(out, name=name, source=source, views=[0],
                          image_size=sizes.pop() if len(sizes) == 1 else None, generator=generator)


def _check_common(split: str, max_side: int | None, quality: int) -> None:
    if split != "auto" and split not in SPLITS:
        raise ValueError(f"--split must be auto or one of {', '.join(SPLITS)}, got {split!r}")
    if max_side is not None and max_side < 32:
        raise ValueError(f"--max-side must be at least 32 pixels, got {max_side}")
    if not (1 <= quality <= 100):
        raise ValueError(f"--quality must be in [1, 100], got {quality}")


def import_osv5m(csv_path: str | Path, images_dir: str | Path, out: str | Path, *, seed: int = 0,
                 split: str = "auto", split_cfg: SplitConfig | None = None, max_side: int | None = None,
                 quality: int = 92, overwrite: bool = False, geo=None,
                 progress=None) -> tuple[dict, ImportReport]:
    """Import an OSV-5M-style CSV + images folder into the dataset folder ``out``."""
    _check_common(split, max_side, quality)
    report = ImportReport()
    records = read_osv5m_csv(Path(csv_path), Path(images_dir), report)
    with fresh_out(Path(out), overwrite) as folder:
        manifest = write_import(records, folder, report, name=Path(csv_path).stem, source="osv5m", seed=seed,
                                split=split, split_cfg=split_cfg or SplitConfig(), max_side=max_side,
                                quality=quality, id_from="key", geo=geo, progress=progress)
    return manifest, report


def import_exif(images_dir: str | Path, out: str | Path, *, seed: int = 0, split: str = "auto",
                split_cfg: SplitConfig | None = None, max_side: int | None = None, quality: int = 92,
                overwrite: bool = False, geo=None, progress=None) -> tuple[dict, ImportReport]:
    """Import a folder of EXIF-geotagged photos into the dataset folder ``out`` (ids: sha1 of the file)."""
    _check_common(split, max_side, quality)
    report = ImportReport()
    records = read_exif_folder(Path(images_dir), report)
    with fresh_out(Path(out), overwrite) as folder:
        manifest = write_import(records, folder, report, name=Path(images_dir).name or "photos",
                                source="exif", seed=seed, split=split, split_cfg=split_cfg or SplitConfig(),
                                max_side=max_side, quality=quality, id_from="file", geo=geo,
                                progress=progress)
    return manifest, report
