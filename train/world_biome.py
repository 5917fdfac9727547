"""What the land looks like at a scene: ground, vegetation, snow, crops and settlement, from Köppen zone,
land cover (MODIS IGBP), month, elevation and precipitation.

Seasons are local: the month is shifted by six south of the equator. Tropical wet/dry zones (Aw, BSh) turn
brown in their dry season; Mediterranean grass (Cs) turns gold in summer; deciduous trees (C and D climates)
go orange in autumn and bare in winter; continental and polar zones get snow in their winter months.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]


BARE_BRANCHES: RGB = (0x6A / 255.0, 0x5A / 255.0, 0x4A / 255.0)   # "crown" colour of leafless trees


def hex_rgb(code: str) -> RGB:
    """'#rrggbb' -> floats in [0, 1]."""
    code = code.lstrip("#")
    return tuple(int(code[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(x * (1 - t) + y * t for x, y in zip(a, b))  # type: ignore[return-value]


@dataclass(frozen=True)
class Biome:
    """Colours and densities for one scene (colours are RGB floats in [0, 1])."""

    grass: RGB
    grass2: RGB  # second ground tone (patches)
    soil: RGB
    soil_share: float  # how much bare soil shows through, 0..1
    snow: float  # snow cover of the ground, 0..1
    trees: tuple[
        tuple[str, float], ...
    ]  # (kind, weight): broadleaf conifer palm acacia shrub cactus birch cypress
    tree_density: float  # 0..1
    crown: RGB  # leaf colour of deciduous trees (season-dependent)
    evergreen: RGB  # needles and palm/olive leaves
    crops: bool
    crop_colours: tuple[RGB, RGB]
    settlement: float  # 0..1 chance that the roadside is built up
    treeline: float  # 0..1 forest band along the horizon
    season: str  # winter | spring | summer | autumn (local)
    forest: bool = False  # closed forest: tree walls along the road


def local_season(month: int, lat_deg: float) -> tuple[int, str]:
    """Northern-equivalent month (1..12) and season name."""
    m = month if lat_deg >= 0 else (month + 5) % 12 + 1
    season = {
        12: "winter",
        1: "winter",
        2: "winter",
        3: "spring",
        4: "spring",
        5: "spring",
        6: "summer",
        7: "summer",
        8: "summer",
    }.get(m, "autumn")
    return m, season


def month_temperature_c(temp_avg_c: float, temp_range_c: float, m: int) -> float:
    """Rough mean temperature of northern-equivalent month ``m``: coldest in January, warmest in July."""
    return temp_avg_c - temp_range_c / 2.0 * math.cos(2.0 * math.pi * (m - 1) / 12.0)


def _snow(koppen: str, m: int, temp_avg_c: float, temp_range_c: float, rng: np.random.Generator) -> float:
    """Snow cover 0..1: likely when the month's mean temperature is below freezing (ERA5 climatology)."""
    t = month_temperature_c(temp_avg_c, temp_range_c, m)
    p = 1.0 if koppen == "EF" else 1.0 / (1.0 + math.exp((t + 1.5) / 1.5))  # 50 % at -1.5 C, 90 % at -5 C
    if rng.random() >= p:
        return 0.0
    return float(np.clip(rng.uniform(0.7, 1.1), 0.0, 1.0))


def _climate_colours(kg: str, m: int, wetness: float, rng) -> tuple[RGB, RGB, RGB, float, tuple, float]:
    """(grass, grass2, soil, soil_share, tree kinds, base tree density) for a Köppen code."""
    g, z = kg[:1], kg
    jit = lambda c: tuple(float(np.clip(x + rng.normal(0, 0.025), 0, 1)) for x in c)  # noqa: E731
    if g == "A":
        dry = z in ("Aw", "As") and m in (12, 1, 2, 3, 4)  # the tropical dry season is the local winter
        grass = hex_rgb("#b5a25a") if dry else hex_rgb("#3f7f2c")
        kinds = (
            (("palm", 0.45), ("broadleaf", 0.55))
            if z in ("Af", "Am")
            else (("acacia", 0.4), ("broadleaf", 0.4), ("palm", 0.2))
        )
        return (
            jit(grass),
            jit(hex_rgb("#2f6a26" if not dry else "#9a8a4a")),
            jit(hex_rgb("#9c5434")),
            0.25 if dry else 0.1,
            kinds,
            0.7 if z != "Aw" else 0.35,
        )
    if z in ("BWh", "BWk"):
        sand = "#dcb980" if z == "BWh" else "#b9a888"
        return (
            jit(hex_rgb(sand)),
            jit(hex_rgb("#cfa870" if z == "BWh" else "#a89878")),
            jit(hex_rgb(sand)),
            0.85,
            (("shrub", 0.8), ("cactus", 0.2)),
            0.04,
        )
    if z in ("BSh", "BSk"):
        dry = m in (12, 1, 2, 3, 4, 5) if z == "BSh" else m in (7, 8, 9)
        grass = "#b8a668" if z == "BSh" or dry else "#9c9a66"
        kinds = (("acacia", 0.5), ("shrub", 0.5)) if z == "BSh" else (("shrub", 0.8), ("broadleaf", 0.2))
        return jit(hex_rgb(grass)), jit(hex_rgb("#a89a5e")), jit(hex_rgb("#b09470")), 0.45, kinds, 0.12
    if z.startswith("Cs"):
        dry = m in (6, 7, 8, 9)
        grass = "#c4ae6e" if dry else "#7c9446"
        return (
            jit(hex_rgb(grass)),
            jit(hex_rgb("#9a9a58")),
            jit(hex_rgb("#a8886a")),
            0.3,
            (("broadleaf", 0.5), ("cypress", 0.3), ("shrub", 0.2)),
            0.3,
        )
    if g == "C":
        winter = m in (12, 1, 2)
        grass = "#6f8a48" if winter else ("#4f9a3c" if wetness > 0.5 else "#6a9a44")
        if z.startswith("Cw") and m in (12, 1, 2, 3):  # dry winter monsoon climates go straw-coloured
            grass = "#a89a5a"
        kinds = (
            (("broadleaf", 0.75), ("conifer", 0.25))
            if z != "Cwa"
            else (("broadleaf", 0.7), ("palm", 0.1), ("conifer", 0.2))
        )
        return jit(hex_rgb(grass)), jit(hex_rgb("#5a8a3a")), jit(hex_rgb("#8a6a4a")), 0.12, kinds, 0.45
    if g == "D":
        boreal = z[2:] in ("c", "d")
        grass = "#8a8a58" if m in (11, 12, 1, 2, 3, 4) else ("#5f7f3a" if boreal else "#5c9040")
        kinds = (
            (("conifer", 0.8), ("birch", 0.2))
            if boreal
            else (("broadleaf", 0.45), ("conifer", 0.35), ("birch", 0.2))
        )
        return (
            jit(hex_rgb(grass)),
            jit(hex_rgb("#6a7a44")),
            jit(hex_rgb("#6e5e48")),
            0.12,
            kinds,
            0.55 if boreal else 0.4,
        )
    if z == "ET":
        return (
            jit(hex_rgb("#8c8a5c")),
            jit(hex_rgb("#7a6e52")),
            jit(hex_rgb("#6e665a")),
            0.4,
            (("shrub", 1.0),),
            0.03,
        )
    if z == "EF":
        return hex_rgb("#eef2f6"), hex_rgb("#dde6ee"), hex_rgb("#c8ccd0"), 0.0, (("shrub", 1.0),), 0.0
    return (
        jit(hex_rgb("#7a9a4a")),
        jit(hex_rgb("#6a8a44")),
        jit(hex_rgb("#8a6a4a")),
        0.2,
        (("broadleaf", 1.0),),
        0.3,
    )


# land cover (MODIS IGBP) -> (tree density multiplier or override, forest band, settlement boost)
_LAND_COVER = {
    1: ("conifer", 0.9, 0.8),
    2: ("broadleaf", 0.95, 0.9),
    3: ("conifer", 0.85, 0.8),
    4: ("broadleaf", 0.85, 0.8),
    5: ("", 0.85, 0.8),
    6: ("shrub", 0.5, 0.2),
    7: ("shrub", 0.2, 0.0),
    8: ("", 0.45, 0.4),
    9: ("", 0.2, 0.15),
    10: ("", 0.07, 0.05),
    11: ("", 0.2, 0.2),
    12: ("", 0.08, 0.1),
    13: ("", 0.25, 0.1),
    14: ("", 0.25, 0.3),
    15: ("", 0.0, 0.0),
    16: ("", 0.01, 0.0),
}


def _crown(kinds, season: str, koppen: str, rng) -> RGB:
    deciduous = koppen[:1] in ("C", "D") and not koppen.startswith("Cs")
    if deciduous and season == "autumn" and rng.random() < 0.7:
        return hex_rgb(rng.choice(["#c8782a", "#b8502a", "#d8a030", "#9a7a2a"]))
    if deciduous and season == "winter":
        return BARE_BRANCHES
    if koppen.startswith("Cs") or koppen[:1] == "B":
        return hex_rgb("#6a7a4a")  # grey-green, olive and scrub
    return hex_rgb("#2e5e24" if koppen[:1] == "A" else "#3a6a2c")


_LATERITE_REGIONS = ("ssa", "lam", "sea", "sas", "oce")


def make_biome(
    koppen: str,
    land_cover: int,
    month: int,
    lat_deg: float,
    temp_avg_c: float,
    temp_range_c: float,
    prec_avg_mm: float,
    town_km: float,
    rng: np.random.Generator,
    region: str = "",
) -> Biome:
    """The :class:`Biome` of one scene from its Köppen zone, land cover, month and ERA5 climate (annual mean
    temperature, warmest-minus-coldest month range, mean monthly precipitation); ``rng`` adds small
    per-location variation; ``region`` is the style region (red laterite soils in the tropics and the
    Australian interior)."""
    kg = koppen or "Cfb"
    m, season = local_season(month, lat_deg)
    wetness = float(np.clip(prec_avg_mm * 12.0 / 1500.0, 0.0, 1.0))  # prec_avg_mm is per month
    grass, grass2, soil, soil_share, kinds, density = _climate_colours(kg, m, wetness, rng)
    if region in _LATERITE_REGIONS and (
        kg[:1] == "A" or kg[:2] == "Cw" or (region == "oce" and kg[:1] == "B")
    ):
        soil = hex_rgb("#b4603a" if region == "oce" else "#a5533a")
        soil_share = max(soil_share, 0.2)
        if kg[:1] == "B":
            grass, grass2 = mix(grass, soil, 0.5), mix(grass2, soil, 0.3)
    if land_cover in (8, 9) and kg[:1] in ("A", "B") or (land_cover in (8, 9) and kg[:2] == "Cw"):
        kinds = (("acacia", 0.6),) + tuple(kinds)
    override, lc_density, treeline = _LAND_COVER.get(land_cover, ("", density, 0.2))
    density = 0.5 * density + 0.5 * lc_density
    if override == "conifer":
        kinds = (("conifer", 0.85), ("birch", 0.15)) if kg[:1] in ("C", "D") else kinds
    elif override == "shrub":
        kinds = (("shrub", 0.8),) + tuple((k, w * 0.25) for k, w in kinds if k != "shrub")
    if land_cover == 16:
        soil_share = max(soil_share, 0.8)
    snow = 1.0 if land_cover == 15 else _snow(kg, m, temp_avg_c, temp_range_c, rng)
    crop_season = "#c9b45a" if m in (7, 8) else "#7a5a3e" if m in (11, 12, 1, 2, 3) else "#6aa040"
    crops = land_cover in (12, 14) and rng.random() < (0.85 if land_cover == 12 else 0.5)
    if kg[:1] == "A":
        crop_season = "#5aa03a"
    settlement = 0.9 if land_cover == 13 else float(np.clip(0.75 * np.exp(-town_km / 2.5) + 0.05, 0, 1))
    forest = land_cover in (1, 2, 3, 4, 5) and settlement < 0.6 and rng.random() < 0.8
    return Biome(
        grass=grass,
        grass2=grass2,
        soil=soil,
        soil_share=soil_share,
        snow=snow,
        trees=tuple(kinds),
        tree_density=float(np.clip(density, 0, 1)),
        crown=_crown(kinds, season, kg, rng),
        crops=crops,
        crop_colours=(hex_rgb(crop_season), mix(hex_rgb(crop_season), soil, 0.45)),
        settlement=settlement,
        treeline=treeline,
        season=season,
        forest=forest,
        evergreen=hex_rgb("#24482a") if kg[:1] in ("C", "D", "E") else hex_rgb("#2e5a26"),
    )
