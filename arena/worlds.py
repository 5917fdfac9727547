"""Worlds: dataset folders (``model.formats.dataset`` format) that arena rounds are drawn from.

A world is served by name (the manifest's ``name``, else the folder name). Its images go out under opaque
per-round URLs, decoded and re-encoded for each game (``reencode_view``): EXIF GPS tags, XMP/IPTC captions,
comments or bytes after the JPEG end marker in a source file would hand the answer to anyone who looks at the
bytes, and byte-identical files across games would let a script build an image -> answer table.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model.formats.dataset import SPLITS, Dataset, Location, load_dataset

log = logging.getLogger(__name__)

def reencode_view(data: bytes, key: bytes) -> bytes:
    """A fresh baseline JPEG of the first image in ``data``: pixels only (no EXIF, XMP, ICC, comments, nothing
    after the end marker), with a +-1 level dither and a JPEG quality in 86..92 drawn from ``key``.

    Different keys (games) give different bytes for the same picture; the same key gives the same bytes. The
    change is invisible (at most one level of 255 per channel). Raises ValueError for undecodable input.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    except (OSError, SyntaxError) as e:
        raise ValueError(f"not a decodable image: {e}") from None
    seed = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    noisy = np.clip(rgb + rng.integers(-1, 2, size=rgb.shape, dtype=np.int16), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    # a new Image object: nothing of the source's info dict (comment, exif, icc_profile) is carried over
    Image.fromarray(noisy, "RGB").save(out, format="JPEG", quality=86 + seed % 7, optimize=False)
    return out.getvalue()


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

    @property
    def image_size(self) -> list[int] | None:
        """[width, height] of the views as the manifest records them (None when it does not)."""
        size = self.dataset.manifest.get("image_size")
        return list(size) if isinstance(size, (list, tuple)) else None

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
        """The source file's bytes (re-encoded per game by the caller)."""
        path = self.dataset.image_path(loc_id, self.dataset.views[view_index])
        return path.read_bytes()

    def draw(self, n_rounds: int, rng: random.Random, seen: set[str] | frozenset[str] = frozenset()) -> list[Location]:
        """``n_rounds`` distinct locations, none in ``seen`` while the pool has enough unseen ones; when it has
        not (the player has seen nearly all), every unseen one plus a random pick of the seen."""
        if n_rounds > len(self.pool):
            raise ValueError(
                f"world {self.name!r} has {len(self.pool)} playable locations; "
                f"ask for at most {len(self.pool)} rounds"
            )
        fresh = [loc for loc in self.pool if loc.id not in seen]
        if len(fresh) >= n_rounds:
            return rng.sample(fresh, n_rounds)
        old = [loc for loc in self.pool if loc.id in seen]
        picked = fresh + rng.sample(old, n_rounds - len(fresh))
        rng.shuffle(picked)
        return picked


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
