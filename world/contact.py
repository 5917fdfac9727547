"""Contact sheet: one strip of views per location, for locations spread over the globe, with a caption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from model.formats.dataset import Dataset, load_dataset
from world.canvas import font
from world.style import COUNTRY_LANGUAGE, LANGUAGE_WORDS


def look_classes(loc) -> tuple[str, ...]:
    """Categories a viewer tells apart at a glance: Köppen main group (plus "snow season" for cold
    climates in their winter), sign script, and driving side."""
    aux = loc.aux
    kg = aux.get("koppen", "")[:1]
    month = int(aux["month"]) if aux.get("month", "").isdigit() else 0
    winter = month in ((12, 1, 2) if loc.lat >= 0 else (6, 7, 8))
    climate = kg + ("*" if kg in ("D", "E") and winter else "")
    lang = COUNTRY_LANGUAGE.get(aux.get("country", ""), "en")
    return climate, LANGUAGE_WORDS.get(lang, ("Latn",))[0], aux.get("driving_side", "")


def spread_locations(
    latlon_deg: np.ndarray,
    countries: list[str],
    n: int,
    classes: list[tuple[str, ...]] | None = None,
    bonus_km: float = 2500.0,
) -> list[int]:
    """Indices of ``n`` far-apart locations: greedy farthest-point on the sphere, one per country while
    countries last, each category in ``classes`` not shown yet worth a ``bonus_km`` head start; starts from
    the first location; deterministic."""
    from model.geo.geography import pairwise_haversine_km

    m = len(latlon_deg)
    if m == 0:
        return []
    classes = classes or [()] * m
    chosen = [0]
    dist = pairwise_haversine_km(latlon_deg[:1], latlon_deg)[0]
    used = {countries[0]}
    seen = [{c} for c in classes[0]]
    while len(chosen) < min(n, m):
        novelty = np.array([sum(c not in s for c, s in zip(cls, seen)) for cls in classes])
        score = dist + bonus_km * novelty
        fresh = np.array([c not in used for c in countries])
        if fresh.any():
            score[~fresh] = -1.0
        score[chosen] = -2.0
        nxt = int(np.argmax(score))
        chosen.append(nxt)
        used.add(countries[nxt])
        for c, s in zip(classes[nxt], seen):
            s.add(c)
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
    countries = [loc.aux.get("country", "") for loc in ds.locations]
    pick = spread_locations(ds.latlon(), countries, n, [look_classes(loc) for loc in ds.locations])
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
