"""Contact sheet: one strip of views per location, for locations spread over the globe, with a caption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from model.dataset import Dataset, load_dataset
from train.world_canvas import font


def spread_locations(latlon_deg: np.ndarray, countries: list[str], n: int, climates: list[str] | None = None,
                     climate_bonus_km: float = 2500.0) -> list[int]:
    """Indices of ``n`` far-apart locations (greedy farthest-point on the sphere, one per country while
    countries last, a head start for a Köppen main group not shown yet), starting from the first location;
    deterministic."""
    from model.geography import pairwise_haversine_km

    m = len(latlon_deg)
    if m == 0:
        return []
    chosen = [0]
    dist = pairwise_haversine_km(latlon_deg[:1], latlon_deg)[0]
    used = {countries[0]}
    groups = [c[:1] for c in climates] if climates else [""] * m
    seen = {groups[0]}
    while len(chosen) < min(n, m):
        score = dist + climate_bonus_km * np.array([g not in seen for g in groups])
        fresh = np.array([c not in used for c in countries])
        if fresh.any():
            score[~fresh] = -1.0
        score[chosen] = -2.0
        nxt = int(np.argmax(score))
        chosen.append(nxt)
        used.add(countries[nxt])
        seen.add(groups[nxt])
        dist = np.minimum(dist, pairwise_haversine_km(latlon_deg[nxt : nxt + 1], latlon_deg)[0])
    return chosen


def _caption(loc) -> str:
    aux = loc.aux
    parts = [
        aux.get("country", ""),
        aux.get("koppen", ""),
        f"month {aux.get('month', '?')}",
        f"drives {aux.get('driving_side', '?')}",
        aux.get("town", ""),
    ]
    return "  ·  ".join(p for p in parts if p)


def contact_sheet(
    data_dir: str | Path, out_png: str | Path, n: int = 16, thumb: int = 192, columns: int = 2
) -> Path:
    """Write a PNG of ``n`` spread-out locations of the dataset at ``data_dir``; returns its path."""
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    if not (32 <= thumb <= 1024):
        raise ValueError(f"--thumb must be between 32 and 1024 pixels, got {thumb}")
    ds: Dataset = load_dataset(data_dir, check_images=True)
    if not ds.locations:
        raise ValueError(f"dataset {data_dir} has no locations")
    aux = [loc.aux for loc in ds.locations]
    countries, climates = [a.get("country", "") for a in aux], [a.get("koppen", "") for a in aux]
    pick = spread_locations(ds.latlon(), countries, n, climates)
    views = ds.views
    cap_h = max(14, thumb // 9)
    strip_w, strip_h = thumb * len(views), thumb + cap_h
    cols = min(columns, len(pick))
    rows = (len(pick) + cols - 1) // cols
    gap = 6
    sheet = Image.new(
        "RGB", (cols * strip_w + (cols - 1) * gap, rows * strip_h + (rows - 1) * gap), (24, 24, 28)
    )
    draw = ImageDraw.Draw(sheet)
    cap_font = font("Latn", int(cap_h * 0.7))
    for k, i in enumerate(pick):
        loc = ds.locations[i]
        x0, y0 = (k % cols) * (strip_w + gap), (k // cols) * (strip_h + gap)
        for j, path in enumerate(ds.image_paths(loc.id)):
            with Image.open(path) as im:
                sheet.paste(im.convert("RGB").resize((thumb, thumb), Image.BILINEAR), (x0 + j * thumb, y0))
        draw.text(
            (x0 + 4, y0 + thumb + cap_h / 2), _caption(loc), font=cap_font, fill=(230, 230, 230), anchor="lm"
        )
    out_png = Path(out_png)
    try:
        out_png.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out_png, format="PNG", optimize=True)
    except OSError as e:
        raise ValueError(f"cannot write contact sheet {out_png}: {e.strerror or e}") from None
    return out_png
