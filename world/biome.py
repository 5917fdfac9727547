"""What the land looks like at a scene: ground, vegetation, snow, crops and settlement, from Köppen zone,
land cover (MODIS IGBP), month and ERA5 climate (temperature, precipitation).

Seasons are local: the month is shifted by six south of the equator. Tropical wet/dry zones (Aw) and
winter-dry monsoon climates (Cw) turn straw-coloured in their dry season; Mediterranean grass (Cs) turns
gold in summer; deciduous trees (C and D climates) go orange in autumn and bare in winter; snow lies where
the month's mean temperature is below freezing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]
BARE_BRANCHES: RGB = (0x6A / 255.0, 0x5A / 255.0, 0x4A / 255.0)  # "crown" colour of leafless trees


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


# fmt: off
_PALM_FOREST = (("palm", 0.45), ("broadleaf", 0.55))
_SAVANNA = (("acacia", 0.4), ("broadleaf", 0.4), ("palm", 0.2))
_DESERT = (("shrub", 0.8), ("cactus", 0.2))
_TEMPERATE = (("broadleaf", 0.75), ("conifer", 0.25))
_TUNDRA = (("shrub", 1.0),)
_MEDITERRANEAN = (("broadleaf", 0.5), ("cypress", 0.3), ("shrub", 0.2))
_SUBTROPICAL = (("broadleaf", 0.7), ("palm", 0.1), ("conifer", 0.2))
_CONTINENTAL = (("broadleaf", 0.45), ("conifer", 0.35), ("birch", 0.2))
# Köppen zone (or its first letters) -> (grass, second tone, soil, soil share, tree kinds, tree density)
_ZONES: dict[str, tuple[str, str, str, float, tuple, float]] = {
    "Af": ("#3f7f2c", "#2f6a26", "#9c5434", 0.1, _PALM_FOREST, 0.7),
    "Am": ("#3f7f2c", "#2f6a26", "#9c5434", 0.1, _PALM_FOREST, 0.7),
    "Aw": ("#3f7f2c", "#2f6a26", "#9c5434", 0.1, _SAVANNA, 0.35),
    "As": ("#3f7f2c", "#2f6a26", "#9c5434", 0.1, _SAVANNA, 0.7),
    "BWh": ("#dcb980", "#cfa870", "#dcb980", 0.85, _DESERT, 0.04),
    "BWk": ("#b9a888", "#a89878", "#b9a888", 0.85, _DESERT, 0.04),
    "BSh": ("#b8a668", "#a89a5e", "#b09470", 0.45, (("acacia", 0.5), ("shrub", 0.5)), 0.12),
    "BSk": ("#9c9a66", "#a89a5e", "#b09470", 0.45, (("shrub", 0.8), ("broadleaf", 0.2)), 0.12),
    "Cs": ("#7c9446", "#9a9a58", "#a8886a", 0.3, _MEDITERRANEAN, 0.3),
    "Cwa": ("#6a9a44", "#5a8a3a", "#8a6a4a", 0.12, _SUBTROPICAL, 0.45),
    "C": ("#6a9a44", "#5a8a3a", "#8a6a4a", 0.12, _TEMPERATE, 0.45),
    "Dc": ("#5f7f3a", "#6a7a44", "#6e5e48", 0.12, (("conifer", 0.8), ("birch", 0.2)), 0.55),   # boreal
    "D": ("#5c9040", "#6a7a44", "#6e5e48", 0.12, _CONTINENTAL, 0.4),
    "ET": ("#8c8a5c", "#7a6e52", "#6e665a", 0.4, _TUNDRA, 0.03),
    "EF": ("#eef2f6", "#dde6ee", "#c8ccd0", 0.0, _TUNDRA, 0.0),
}
# fmt: on


def _zone_key(kg: str) -> str:
    if kg[:1] == "D":
        return "Dc" if kg[2:] in ("c", "d") else "D"
    for key in (kg, kg[:2], kg[:1]):
        if key in _ZONES:
            return key
    return "C"


def _seasonal_grass(kg: str, m: int, wetness: float) -> str | None:
    """Grass colour of the season where it differs from the zone's default (``m``: northern-equivalent)."""
    if kg in ("Aw", "As") and m in (12, 1, 2, 3, 4):
        return "#b5a25a"  # the tropical dry season is the local winter
    if kg == "BSk" and m in (7, 8, 9) or kg.startswith("Cs") and m in (6, 7, 8, 9):
        return "#c4ae6e"  # dry, golden summers
    if kg.startswith("Cw") and m in (12, 1, 2, 3):
        return "#a89a5a"  # dry winter monsoon climates go straw-coloured
    if kg[:1] == "C" and m in (12, 1, 2):
        return "#6f8a48"
    if kg[:1] == "C" and not kg.startswith("Cs") and wetness > 0.5:
        return "#4f9a3c"
    if kg[:1] == "D" and m in (11, 12, 1, 2, 3, 4):
        return "#8a8a58"
    return None


def _climate_colours(kg: str, m: int, wetness: float, rng) -> tuple[RGB, RGB, RGB, float, tuple, float]:
    """(grass, grass2, soil, soil_share, tree kinds, base tree density) for a Köppen code and month."""
    grass, grass2, soil, soil_share, kinds, density = _ZONES[_zone_key(kg)]
    seasonal = _seasonal_grass(kg, m, wetness)
    if seasonal and kg[:1] == "A":
        grass2, soil_share = "#9a8a4a", 0.25
    if kg == "EF":
        return hex_rgb(grass), hex_rgb(grass2), hex_rgb(soil), soil_share, kinds, density

    def jit(code: str) -> RGB:  # a little per-location variation of every colour
        return tuple(float(np.clip(x + rng.normal(0, 0.025), 0, 1)) for x in hex_rgb(code))  # type: ignore

    return jit(seasonal or grass), jit(grass2), jit(soil), soil_share, kinds, density


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


def _crown(season: str, koppen: str, rng) -> RGB:
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
        crown=_crown(season, kg, rng),
        crops=crops,
        crop_colours=(hex_rgb(crop_season), mix(hex_rgb(crop_season), soil, 0.45)),
        settlement=settlement,
        treeline=treeline,
        season=season,
        forest=forest,
        evergreen=hex_rgb("#24482a") if kg[:1] in ("C", "D", "E") else hex_rgb("#2e5a26"),
    )
