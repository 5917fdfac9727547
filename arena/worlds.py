"""Worlds: dataset folders (``model.formats.dataset`` format) that arena rounds are drawn from.

A world is served by name (the manifest's ``name``, else the folder name). Its images go out under opaque
per-round URLs with JPEG metadata stripped, because EXIF GPS tags or XMP/IPTC captions in a source photo would
hand the answer to anyone who looks at the bytes.
"""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from model.formats.dataset import SPLITS, Dataset, Location, load_dataset

log = logging.getLogger(__name__)

# JPEG markers kept when stripping metadata: APP0 (JFIF), APP2 only when it holds an ICC profile (colour),
# APP14 (Adobe colour transform; decoders need it for CMYK/YCCK). Every other APPn and COM is dropped.
_APP0, _APP2, _APP14, _COM, _SOS, _EOI = 0xE0, 0xE2, 0xEE, 0xFE, 0xDA, 0xD9
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The same JPEG without EXIF/XMP/IPTC/comment segments (pixel data untouched).

    Raises ValueError when ``data`` is not a well-formed JPEG header sequence.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file (no SOI marker)")
    out = bytearray(data[:2])
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"malformed JPEG: expected a marker at byte {pos}")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= len(data):
            raise ValueError("malformed JPEG: truncated marker")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out += b"\xff\xd9"
            return bytes(out)
        if marker in _STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > len(data):
            raise ValueError("malformed JPEG: truncated segment length")
        seg_len = int.from_bytes(data[pos : pos + 2], "big")
        if seg_len < 2 or pos + seg_len > len(data):
            raise ValueError(f"malformed JPEG: bad segment length {seg_len} at byte {pos}")
        body = data[pos : pos + seg_len]
        if marker == _SOS:  # entropy-coded data follows; copy the rest verbatim
            out += bytes((0xFF, marker)) + data[pos:]
            return bytes(out)
        keep = (
            (marker not in range(0xE0, 0xF0) and marker != _COM)
            or marker in (_APP0, _APP14)
            or (marker == _APP2 and body[2:14] == b"ICC_PROFILE\x00")
        )
        if keep:
            out += bytes((0xFF, marker)) + body
        pos += seg_len
    raise ValueError("malformed JPEG: no image data (SOS) found")


@dataclass
class World:
    """One dataset folder and the locations rounds are drawn from (``pool``)."""

    name: str
    dataset: Dataset
    pool: list[Location]

    def __post_init__(self) -> None:
        self._by_id = {loc.id: loc for loc in self.dataset.locations}
        # per-instance cache of stripped image bytes (~100 KB each): duel players fetch the same views
        self.image_bytes = functools.lru_cache(maxsize=256)(self._image_bytes)

    @property
    def n_views(self) -> int:
        return len(self.dataset.views)

    def location(self, loc_id: str) -> Location:
        return self._by_id[loc_id]

    def view_heading_deg(self, loc: Location, view_index: int) -> int | None:
        """Compass heading of a view when the dataset records the heading of view 0, else None."""
        text = (loc.aux.get("heading") or "").strip()
        try:
            base = float(text)
        except ValueError:
            return None
        return int(round(base + self.dataset.views[view_index])) % 360

    def _image_bytes(self, loc_id: str, view_index: int) -> bytes:
        path = self.dataset.image_path(loc_id, self.dataset.views[view_index])
        return strip_jpeg_metadata(path.read_bytes())

    def draw(self, n_rounds: int, rng: random.Random) -> list[Location]:
        """``n_rounds`` distinct locations from the pool."""
        if n_rounds > len(self.pool):
            raise ValueError(
                f"world {self.name!r} has {len(self.pool)} playable locations; "
                f"ask for at most {len(self.pool)} rounds"
            )
        return rng.sample(self.pool, n_rounds)


def load_world(root: str | Path, split: str = "test") -> World:
    """Load a dataset folder as a world; ``split`` is train/val/test or 'all'. Checks every image exists."""
    if split != "all" and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS} or 'all'")
    ds = load_dataset(root, check_images=True)
    pool = list(ds.locations) if split == "all" else ds.split(split)
    if not pool:
        raise ValueError(
            f"world {root} has no locations in split {split!r} (use --split all to play every row)"
        )
    name = str(ds.manifest.get("name") or Path(root).resolve().name)
    log.info("world %r: %d playable locations, %d views each", name, len(pool), len(ds.views))
    return World(name=name, dataset=ds, pool=pool)


def load_worlds(roots: list[str | Path], split: str = "test") -> dict[str, World]:
    """Several worlds keyed by name, in the given order (the first is the default)."""
    if not roots:
        raise ValueError("no world given: pass at least one dataset folder (--world DIR)")
    worlds: dict[str, World] = {}
    for root in roots:
        w = load_world(root, split)
        if w.name in worlds:
            raise ValueError(
                f"two worlds are named {w.name!r} ({root} and an earlier one); rename one manifest"
            )
        worlds[w.name] = w
    return worlds
