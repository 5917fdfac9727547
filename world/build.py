"""``render_world``: sample locations, look up their geodata once, draw them in worker processes, and write
a dataset folder (``model.formats.dataset`` format) that is byte-identical for the same seed, count and config."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from model.config import config_to_dict
from model.formats.dataset import AUX_COLUMNS, FORMAT, write_locations_csv, write_manifest
from model.workers import pool_context
from world.config import RenderConfig, WorldConfig
from world.sampler import assign_splits, sample_locations
from world.scene import Scene, build_scenes

log = logging.getLogger(__name__)
RENDERER_VERSION = 1
_CHUNK = 4  # locations per worker task: small enough for a smooth progress bar


def prepare_out(out: Path, overwrite: bool = False) -> Path:
    """Create ``out`` (empty) for a new dataset; with ``overwrite`` an existing pigeon dataset there is
    replaced. Raises ValueError naming the folder when it cannot be used."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        manifest = out / "manifest.json"
        text = manifest.read_text(encoding="utf-8", errors="replace") if manifest.is_file() else ""
        if not overwrite:
            raise ValueError(f"output folder {out} is not empty; pass --overwrite to replace a dataset there")
        if f'"{FORMAT}"' not in text:
            raise ValueError(f"output folder {out} is not empty and holds no pigeon dataset; "
                             "refusing to overwrite it")
        _clear_dataset(out)
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"cannot write to output folder {out}: {e.strerror or e}") from None
    return out


@contextlib.contextmanager
def fresh_out(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """``prepare_out``, and if the body fails, remove what it wrote (and the folder if it created it), so a
    failed run never blocks the next one with a half-written folder."""
    out = Path(out)
    was_new = not out.exists()
    prepare_out(out, overwrite)
    try:
        yield out
    except BaseException:
        shutil.rmtree(out, ignore_errors=True) if was_new else _clear_dataset(out)
        raise


def _clear_dataset(out: Path) -> None:
    for name in ("images", "locations.csv", "manifest.json"):
        target = out / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)


def render_scenes(scenes: Sequence[Scene], cfg: RenderConfig, images_dir: Path, size: int) -> int:
    """Draw ``scenes`` and write ``images_dir/<id>_<view>.jpg``; returns the number of locations."""
    from world.render import encode_jpeg, render_location

    for scene in scenes:
        for view, img in zip(cfg.views, render_location(scene, cfg, size)):
            (images_dir / f"{scene.loc_id}_{int(view)}.jpg").write_bytes(encode_jpeg(img, cfg.jpeg_quality))
    return len(scenes)


def _worker(args: tuple) -> tuple[int, float]:
    """Draw one chunk; returns (locations, CPU seconds spent)."""
    scenes, cfg, images_dir, size = args
    start = time.process_time()
    done = render_scenes(scenes, cfg, Path(images_dir), size)
    return done, time.process_time() - start


def _chunks(items: Sequence, n: int) -> Iterable[Sequence]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _draw_all(
    scenes: list[Scene],
    cfg: RenderConfig,
    images_dir: Path,
    workers: int,
    progress: Callable[[int], None] | None,
    stats: dict,
) -> None:
    """Draw every scene, in a pool when ``workers`` > 1; adds the drawing CPU seconds to ``stats``."""
    tasks = [(chunk, cfg, str(images_dir), cfg.image_size) for chunk in _chunks(scenes, _CHUNK)]
    stats.setdefault("draw_cpu_s", 0.0)
    if progress:
        progress(0)  # lookups done, drawing starts
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            done, cpu_s = _worker(task)
            stats["draw_cpu_s"] += cpu_s
            if progress:
                progress(done)
        return
    with pool_context(["world.render"]).Pool(processes=min(workers, len(tasks))) as pool:
        for done, cpu_s in pool.imap_unordered(_worker, tasks):
            stats["draw_cpu_s"] += cpu_s
            if progress:
                progress(done)


def location_row(loc_id: str, lat: float, lon: float, split: str, ann, i: int, month, heading) -> dict:
    """One ``locations.csv`` row: coordinates, split, the ``geo.annotate`` row ``i``, month and heading."""
    elev = ann["elevation_m"].iat[i]
    row = {"id": loc_id, "lat": f"{lat:.6f}", "lon": f"{lon:.6f}", "split": str(split),
           "elevation_m": "" if np.isnan(elev) else f"{elev:.0f}",
           "land_cover": int(ann["land_cover"].iat[i]),
           "month": "" if month is None else month, "heading": "" if heading is None else f"{heading:.1f}"}
    row.update({k: str(ann[k].iat[i]) for k in ("country", "admin1", "town", "koppen", "driving_side")})
    return row


def _geodata_fingerprint(geo) -> str:
    path = Path(getattr(geo, "geodata_dir", "")) / "manifest.json"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def render_world(
    out: str | Path,
    seed: int,
    n_locations: int,
    cfg: WorldConfig,
    workers: int = 1,
    geo=None,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
    stats: dict | None = None,
) -> dict:
    """Render ``n_locations`` locations into the dataset folder ``out``; returns the manifest.

    ``progress(k)`` is called with 0 when drawing starts, then as each batch of ``k`` locations is written.
    ``stats``, if given, receives timings: ``lookup_s`` (sampling + geodata), ``draw_s`` (wall) and
    ``draw_cpu_s`` (CPU seconds of all drawing processes)."""
    stats = {} if stats is None else stats
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")
    if not isinstance(n_locations, int) or n_locations < 1:
        raise ValueError(f"--locations must be at least 1, got {n_locations!r}")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    with fresh_out(Path(out), overwrite) as out:
        if geo is None:
            from model.geo import geodata

            geo = geodata.load()
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, 0x5EED])
        lat, lon, _ = sample_locations(geo, cfg.sampler, n_locations, rng)
        split = assign_splits(lat, lon, seed, cfg.split)
        scenes, ann = build_scenes(geo, lat, lon, seed, cfg.render, rng)
        log.info("rendering %d locations x %d views at %d px with %d worker(s)", len(scenes),
                 len(cfg.render.views), cfg.render.image_size, workers)
        t1 = time.perf_counter()
        _draw_all(scenes, cfg.render, out / "images", workers, progress, stats)
        stats.update(lookup_s=t1 - t0, draw_s=time.perf_counter() - t1)
        rows = [location_row(s.loc_id, s.lat, s.lon, split[i], ann, i, s.month, s.heading_deg)
                for i, s in enumerate(scenes)]
        write_locations_csv(out / "locations.csv", rows, AUX_COLUMNS)
        return _write_render_manifest(out, cfg, seed, n_locations, geo)


def _write_render_manifest(out: Path, cfg: WorldConfig, seed: int, n_locations: int, geo) -> dict:
    """The manifest of a render: no timestamp, so the same inputs give the same bytes."""
    import PIL

    generator = {"tool": "pigeon world render", "renderer_version": RENDERER_VERSION, "seed": seed,
                 "locations": n_locations, "config": config_to_dict(cfg),
                 "geodata_manifest_sha256": _geodata_fingerprint(geo),
                 "versions": {"numpy": np.__version__, "pillow": PIL.__version__}}
    rule = f"{cfg.split.block_deg} deg blocks, val/test >= {cfg.split.min_km} km from every train location"
    size = cfg.render.image_size
    return write_manifest(out, name=cfg.name, source="synthetic", views=list(cfg.render.views),
                          image_size=(size, size), generator=generator, extra={"split_rule": rule},
                          timestamp=False)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
