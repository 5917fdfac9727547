"""Regional conventions of the synthetic street world: road markings, bollards, signs, plates, buildings.

These are the "GeoGuessr meta" clues the renderer paints. Values follow well-known real conventions where
the author knows them (yellow centre lines in the Americas, Korea and Taiwan; yellow edge lines in Ireland
and southern Africa; yellow German direction signs; French bollards with a red reflector; black Norwegian
bollards; miles in the US and UK; yellow Dutch plates; ...). Where a convention is not well known, a
regional default is used: the point is a consistent, learnable mapping from place to look, like the real
meta.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from model.geo.lexicon import COUNTRY_LANGUAGE, LANGUAGE_WORDS, SHOP_WORDS, sign_language  # noqa: F401 (re-export)

# The tables below are aligned by hand to stay compact; the formatter leaves them alone.
# fmt: off
# ISO 3166-1 alpha-2 codes of countries/territories with official Google Street View coverage (GeoGuessr's
# "official coverage" list, approximately, as of 2024). configs/world.toml carries the same list for editing.
STREETVIEW_COVERAGE: tuple[str, ...] = (
    # Europe
    "AD", "AL", "AT", "BE", "BG", "CH", "CZ", "DE", "DK", "EE", "ES", "FI", "FO", "FR", "GB", "GI",
    "GR", "HR", "HU", "IE", "IM", "IS", "IT", "JE", "LI", "LT", "LU", "LV", "MC", "ME", "MK", "MT",
    "NL", "NO", "PL", "PT", "RO", "RS", "RU", "SE", "SI", "SK", "SM", "TR", "UA",
    # Asia
    "AE", "BD", "BT", "HK", "ID", "IL", "IN", "JO", "JP", "KG", "KH", "KR", "KZ", "LA", "LB", "LK",
    "MN", "MO", "MY", "OM", "PH", "PS", "QA", "SG", "TH", "TW",
    # Americas
    "AR", "BO", "BR", "CA", "CL", "CO", "CR", "DO", "EC", "GL", "GT", "MX", "PA", "PE", "PR", "US",
    "UY",
    # Africa
    "BW", "GH", "KE", "LS", "MG", "NG", "RE", "RW", "SN", "SZ", "TN", "UG", "ZA",
    # Oceania
    "AS", "AU", "GU", "MP", "NZ",
)

# Style region of each covered country; other countries fall back on their continent (CONTINENT_REGION).
_REGION_MEMBERS = {
    "weu": "AT BE CH DE FR LI LU MC NL RE",
    "uk": "GB IE IM JE GG",
    "neu": "DK FI FO IS NO SE GL",
    "seu": "AD AL ES GI GR HR IT ME MK MT PT SM TR CY",
    "eeu": "BG CZ EE HU LT LV PL RO RS RU SI SK UA BY MD BA",
    "nam": "US CA GU MP AS",
    "lam": "AR BO BR CL CO CR DO EC GT MX PA PE PR UY PY VE HN SV NI",
    "eas": "JP KR TW HK MO CN",
    "sea": "TH KH LA MY SG ID PH VN MM",
    "sas": "IN BD LK BT NP PK",
    "cas": "MN KG KZ UZ TJ",
    "mea": "IL PS JO AE QA OM LB TN SA EG MA",
    "ssa": "ZA BW LS SZ KE UG RW NG GH SN MG NA TZ",
    "oce": "AU NZ",
}
COUNTRY_REGION: dict[str, str] = {cc: r for r, members in _REGION_MEMBERS.items() for cc in members.split()}
CONTINENT_REGION = {"Europe": "weu", "Asia": "sea", "Africa": "ssa", "North America": "nam",
                    "South America": "lam", "Oceania": "oce", "Antarctica": "neu"}


@dataclass(frozen=True)
class RoadStyle:
    """How roads and roadside furniture look in one country. Colours are hex strings."""

    region: str
    centre: str = "#f2f2f2"            # centre-line colour; "" = no centre line
    centre_pattern: str = "dashed"     # dashed | solid | double
    edge: str = "#f2f2f2"              # edge-line colour; "" = none
    lane_m: float = 3.25
    asphalt: str = "#4a4a4c"
    unpaved: float = 0.03              # probability of a dirt/gravel road outside towns
    dirt: str = "#9a8468"
    bollard: str = ""                  # key of BOLLARDS, "" = none
    kerb: str = ""                     # "" | red_white | black_white | yellow_black
    sign_bg: str = "#1f4fa0"           # direction signs
    sign_fg: str = "#ffffff"
    town_bg: str = "#ffffff"           # town-name signs
    town_fg: str = "#111111"
    town_border: str = "#111111"
    unit: str = "km"
    stop_shape: str = "octagon"        # octagon | triangle (Japan)
    plate: str = "white"               # key of PLATES
    pole: str = "wood"                 # wood | concrete | metal | "" (buried cables)
    wires: int = 2
    buildings: str = "weu"             # key of BUILDINGS
    hedge: float = 0.0                 # probability of hedgerows along the road (UK, Ireland)
    guardrail: float = 0.1


_YELLOW = "#e8b420"
_WHITE = "#f2f2f2"

REGION_STYLES: dict[str, RoadStyle] = {
    "weu": RoadStyle("weu", bollard="generic", plate="eu", pole="", wires=0, buildings="weu", guardrail=0.2),
    "uk": RoadStyle("uk", sign_bg="#0b6b3a", town_bg="#ffffff", town_border="#111111", plate="uk",
                    pole="wood", buildings="uk", hedge=0.7, lane_m=3.1, unit="mi"),
    "neu": RoadStyle("neu", bollard="nordic", plate="eu", pole="wood", buildings="neu", unpaved=0.15,
                     lane_m=3.0, dirt="#8f8676", asphalt="#56565a"),
    "seu": RoadStyle("seu", bollard="white_black", plate="eu", pole="concrete", buildings="seu", unpaved=0.05,
                     asphalt="#55555a"),
    "eeu": RoadStyle("eeu", bollard="white_red", plate="eu", pole="concrete", wires=3, buildings="eeu",
                     unpaved=0.12, asphalt="#5e5e60", town_bg="#1f4fa0", town_fg="#ffffff",
                     town_border="#ffffff"),
    "nam": RoadStyle("nam", centre=_YELLOW, centre_pattern="double", sign_bg="#0a6b3c", town_bg="#0a6b3c",
                     town_fg="#ffffff", town_border="#ffffff", unit="mi", plate="us", pole="wood", wires=3,
                     buildings="nam", lane_m=3.6, asphalt="#3c3c3f", guardrail=0.15),
    "lam": RoadStyle("lam", centre=_YELLOW, sign_bg="#0a6b3c", town_bg="#0a6b3c", town_fg="#ffffff",
                     town_border="#ffffff", plate="white", pole="concrete", wires=4, buildings="lam",
                     unpaved=0.25, dirt="#a47a55"),
    "eas": RoadStyle("eas", sign_bg="#1f4fa0", plate="jp", pole="concrete", wires=7, buildings="eas",
                     lane_m=3.0, guardrail=0.45),
    "sea": RoadStyle("sea", centre=_YELLOW, kerb="black_white", sign_bg="#1f4fa0", plate="white",
                     pole="concrete", wires=6, buildings="sea", unpaved=0.2, dirt="#a06a48"),
    "sas": RoadStyle("sas", kerb="yellow_black", sign_bg="#0a6b3c", plate="white", pole="concrete", wires=5,
                     buildings="sas", unpaved=0.3, dirt="#a58562", asphalt="#535356"),
    "cas": RoadStyle("cas", sign_bg="#1f4fa0", plate="white", pole="concrete", wires=2, buildings="cas",
                     unpaved=0.45, dirt="#9c8b70"),
    "mea": RoadStyle("mea", kerb="black_white", sign_bg="#1f4fa0", plate="white", pole="metal", wires=1,
                     buildings="mea", unpaved=0.08, asphalt="#4f4f52", dirt="#c2a57a"),
    "ssa": RoadStyle("ssa", sign_bg="#0a6b3c", plate="white", pole="wood", wires=2, buildings="ssa",
                     unpaved=0.45, dirt="#a5583a"),
    "oce": RoadStyle("oce", sign_bg="#0a6b3c", bollard="guide_post", plate="white", pole="wood", wires=2,
                     buildings="oce", unpaved=0.15, dirt="#b0633c"),
}

# Per-country deviations from the regional default: the famous metas.
COUNTRY_OVERRIDES: dict[str, dict] = {
    "US": {}, "CA": {"unit": "km", "centre_pattern": "dashed"}, "MX": {"edge": ""}, "GT": {"edge": ""},
    "BR": {"sign_bg": "#1f4fa0"}, "AR": {"centre": _WHITE}, "CL": {"centre": _WHITE},
    "PE": {"centre": _WHITE, "unpaved": 0.35}, "BO": {"unpaved": 0.45}, "GB": {"sign_bg": "#0b6b3a"},
    "IE": {"edge": _YELLOW, "unit": "km", "sign_bg": "#0b6b3a"}, "IM": {"unit": "mi"}, "JE": {"unit": "mi"},
    "DE": {"bollard": "de", "sign_bg": "#f2c200", "sign_fg": "#111111", "town_bg": "#f2c200"},
    "AT": {"bollard": "at", "town_bg": "#1f4fa0", "town_fg": "#ffffff", "town_border": "#ffffff"},
    "CH": {"bollard": "ch", "town_bg": "#1f4fa0", "town_fg": "#ffffff", "town_border": "#ffffff"},
    "FR": {"bollard": "fr", "sign_bg": "#ffffff", "sign_fg": "#111111", "town_border": "#c4161c"},
    "RE": {"bollard": "fr", "sign_bg": "#ffffff", "sign_fg": "#111111", "town_border": "#c4161c"},
    "MC": {"bollard": "fr"}, "LU": {"bollard": "fr", "plate": "eu_yellow"},
    "NL": {"bollard": "nl", "plate": "eu_yellow", "town_bg": "#1f4fa0", "town_fg": "#ffffff"},
    "BE": {"bollard": "be", "plate": "eu_red", "sign_bg": "#ffffff", "sign_fg": "#111111"},
    "IT": {"bollard": "it", "town_border": "#111111"}, "ES": {"bollard": "es"}, "PT": {"bollard": "pt"},
    "GR": {"bollard": "gr", "sign_bg": "#1f4fa0"}, "TR": {"bollard": "white_red"},
    "NO": {"centre": _YELLOW, "bollard": "no", "sign_bg": "#1f4fa0"},
    "FI": {"centre": _YELLOW, "bollard": "fi"}, "SE": {"bollard": "se"},
    "IS": {"bollard": "is", "unpaved": 0.3}, "DK": {"bollard": "dk", "unpaved": 0.02},
    "GL": {"unpaved": 0.6, "pole": ""}, "PL": {"bollard": "pl"}, "CZ": {"bollard": "cz"},
    "SK": {"bollard": "cz"}, "HU": {"bollard": "hu"}, "RU": {"bollard": "striped", "plate": "white"},
    "UA": {"bollard": "striped", "plate": "white"}, "RS": {"plate": "white"}, "EE": {"unpaved": 0.2},
    "LT": {"unpaved": 0.2}, "LV": {"unpaved": 0.25}, "JP": {"centre": _WHITE, "stop_shape": "triangle"},
    "KR": {"centre": _YELLOW, "centre_pattern": "double", "plate": "white"},
    "TW": {"centre": _YELLOW, "centre_pattern": "double", "sign_bg": "#0a6b3c", "plate": "white"},
    "HK": {"centre": _WHITE, "plate": "uk"}, "MO": {"plate": "black"},
    "TH": {"kerb": "red_white", "plate": "white"}, "MY": {"centre": _WHITE, "plate": "black"},
    "SG": {"centre": _WHITE, "plate": "black"},
    "ID": {"centre": _WHITE, "plate": "black", "sign_bg": "#0a6b3c"},
    "PH": {"centre": _WHITE, "sign_bg": "#0a6b3c"}, "KH": {"centre": _WHITE}, "MN": {"unpaved": 0.65},
    "KZ": {"unpaved": 0.35}, "IL": {"kerb": "red_white", "plate": "yellow", "sign_bg": "#0a6b3c"},
    "PS": {"kerb": "black_white"}, "AE": {"edge": _YELLOW, "sign_bg": "#0a6b3c"}, "QA": {"edge": _YELLOW},
    "OM": {"edge": _YELLOW}, "ZA": {"edge": _YELLOW}, "BW": {"edge": _YELLOW},
    "LS": {"edge": _YELLOW, "unpaved": 0.5}, "SZ": {"edge": _YELLOW}, "NA": {"edge": _YELLOW},
    "KE": {"plate": "yellow", "unpaved": 0.5}, "UG": {"plate": "yellow", "unpaved": 0.55},
    "GH": {"pole": "concrete"}, "NG": {"pole": "concrete"}, "MG": {"unpaved": 0.6}, "RW": {"unpaved": 0.35},
    "SN": {"pole": "concrete", "dirt": "#b89468"}, "TN": {"pole": "concrete"}, "NZ": {"bollard": "nz"},
    "AU": {"bollard": "guide_post"},
}

# Which side of the road the camera car drives on, for countries whose geodata lacks it.
LEFT_DRIVING = frozenset("GB IE IM JE GG JP HK MO TH MY SG ID IN BD LK BT NP PK ZA BW LS SZ NA KE UG TZ AU "
                         "NZ "
                         "MT CY".split())

# Bollards: body colour, band colour, reflector colour.
BOLLARDS: dict[str, tuple[str, str, str]] = {
    "generic": ("#f4f4f0", "#1a1a1a", "#e0e0e0"), "de": ("#f4f4f0", "#1a1a1a", "#ffffff"),
    "at": ("#f4f4f0", "#1a1a1a", "#f4f4f0"), "ch": ("#f4f4f0", "#1a1a1a", "#f0c000"),
    "fr": ("#f4f4f0", "#1a1a1a", "#d42020"), "nl": ("#f4f4f0", "#f4f4f0", "#d42020"),
    "be": ("#f4f4f0", "#d42020", "#f4f4f0"), "it": ("#f4f4f0", "#1a1a1a", "#f08000"),
    "es": ("#f4f4f0", "#1a1a1a", "#f0c000"), "pt": ("#f4f4f0", "#d42020", "#f4f4f0"),
    "gr": ("#f0d020", "#1a1a1a", "#f4f4f0"), "no": ("#1a1a1a", "#1a1a1a", "#f0c000"),
    "se": ("#1a1a1a", "#1a1a1a", "#f4f4f0"), "fi": ("#1a1a1a", "#f4f4f0", "#f4f4f0"),
    "is": ("#f0c800", "#f0c800", "#f4f4f0"), "dk": ("#f4f4f0", "#f4f4f0", "#f0c000"),
    "pl": ("#f4f4f0", "#d42020", "#d42020"), "cz": ("#f4f4f0", "#1a1a1a", "#f06000"),
    "hu": ("#f4f4f0", "#d42020", "#f4f4f0"), "striped": ("#f4f4f0", "#1a1a1a", "#d42020"),
    "white_black": ("#f4f4f0", "#1a1a1a", "#f0c000"), "white_red": ("#f4f4f0", "#d42020", "#d42020"),
    "nordic": ("#1a1a1a", "#1a1a1a", "#f4f4f0"), "guide_post": ("#f4f4f0", "#f4f4f0", "#d42020"),
    "nz": ("#f4f4f0", "#f4f4f0", "#f08000"),
}

# Licence plates: background colour, optional left strip colour, text colour.
PLATES: dict[str, tuple[str, str, str]] = {
    "eu": ("#f4f4f0", "#1d3a9a", "#111111"), "eu_yellow": ("#f2c500", "#1d3a9a", "#111111"),
    "eu_red": ("#f4f4f0", "#1d3a9a", "#b01010"), "uk": ("#f2c500", "", "#111111"),
    "us": ("#e8ecf0", "", "#1a2a6a"), "white": ("#f4f4f0", "", "#111111"), "jp": ("#f4f4f0", "", "#0b5a2a"),
    "yellow": ("#f2c500", "", "#111111"), "black": ("#151515", "", "#f0f0f0"),
}

# Buildings: wall colours, roof colours, roof kind, storeys (min, max), detached (gaps between houses).
BUILDINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, tuple[int, int]]] = {
    "weu": (("#e9e1d0", "#d8cbb0", "#f2efe6", "#c9b9a0", "#e3d3b8"),
            ("#9c3d2a", "#7a3326", "#4a4a50"), "gable", (1, 4)),
    "uk": (("#8a4a36", "#9a5a44", "#7a3f30", "#e8e0d0"),
            ("#3c3c44", "#4a4448"), "gable", (1, 3)),
    "neu": (("#9c2a20", "#e8c860", "#f0f0ea", "#7a8a9a", "#b03a2a"),
            ("#2a2a2e", "#3a3030", "#5a2a24"), "gable", (1, 3)),
    "seu": (("#f2ead8", "#e8d4a8", "#f6f2ea", "#d8b888", "#eadcc0"),
            ("#b0502e", "#a04628", "#c06a3c"), "hip", (1, 4)),
    "eeu": (("#b8b4aa", "#d0c8b4", "#9a9890", "#c8a890", "#e0dccc"),
            ("#6a6a6e", "#5a4a40", "#8a3a2e"), "flat", (1, 9)),
    "nam": (("#e8e6e0", "#c8ccd0", "#d8c8a8", "#8aa0b4", "#b8b0a0", "#f0ece0"),
            ("#4a4a4e", "#5a5048", "#3a3a3e"), "gable", (1, 2)),
    "lam": (("#e0a060", "#f0d070", "#6ab0a8", "#e07070", "#f2efe6", "#c8a8d0", "#f0b8a0"),
            ("#9a9a9a", "#a04a30"), "flat", (1, 3)),
    "eas": (("#e6e4de", "#c8c6c0", "#d8d0c0", "#a8aab0", "#f0eeea"),
            ("#3a4450", "#5a5a60", "#2e3a48"), "flat", (2, 8)),
    "sea": (("#f0e0b0", "#e8c0a0", "#a8d0c0", "#f2f0e8", "#d0d8e8", "#f0b070"),
            ("#a04a30", "#7a8890", "#c05030"), "hip", (1, 4)),
    "sas": (("#e8d8b0", "#d0e0d8", "#f0c8c8", "#c8c0b0", "#f0e8d8", "#a0c0d8"),
            ("#8a8078", "#9a9a90"), "flat", (1, 4)),
    "cas": (("#f0f0ea", "#d8d0b8", "#a8c0d8", "#c8b8a0"),
            ("#4a7aa0", "#8a3030", "#6a8a6a"), "gable", (1, 3)),
    "mea": (("#e0ccaa", "#eadcc4", "#f2ece0", "#d4bc94"),
            ("#d0c0a0", "#e0d4bc"), "flat", (1, 4)),
    "ssa": (("#c89070", "#e8d8b8", "#a8c8d8", "#d0b090", "#e0a888", "#f0e8d8"),
            ("#8a9098", "#a8aab0", "#7a5a48"), "shed", (1, 2)),
    "oce": (("#b07060", "#e8e0d0", "#c8b8a0", "#d8d0c0"),
            ("#7a8a96", "#4a4a50", "#a04030"), "hip", (1, 2)),
}


def region_of(iso_a2: str, continent: str = "") -> str:
    """Style region of a country: from the table, else from its continent, else western Europe."""
    return COUNTRY_REGION.get(iso_a2.upper(), CONTINENT_REGION.get(continent, "weu"))


def road_style(iso_a2: str, continent: str = "") -> RoadStyle:
    """The full :class:`RoadStyle` of a country: its region's defaults with the country's overrides."""
    iso = iso_a2.upper()
    style = REGION_STYLES[region_of(iso, continent)]
    return replace(style, **COUNTRY_OVERRIDES.get(iso, {}))


# ---------------------------------------------------------------------------------------------------------
# Languages, sign words and fonts.

# The sign words of each language live in model/geo/lexicon.py (the text cue reads them back).

_NOTO = ("/usr/share/fonts/truetype/noto", "/usr/share/fonts/opentype/noto",
         "/usr/share/fonts/truetype/dejavu")
# script -> (font file name, face index in a collection)
SCRIPT_FONTS: dict[str, tuple[str, int]] = {
    "Latn": ("NotoSans-Bold.ttf", 0), "Cyrl": ("NotoSans-Bold.ttf", 0), "Grek": ("NotoSans-Bold.ttf", 0),
    "Arab": ("NotoSansArabic-Bold.ttf", 0), "Hebr": ("NotoSansHebrew-Bold.ttf", 0),
    "Thai": ("NotoSansThai-Bold.ttf", 0), "Laoo": ("NotoSansLao-Bold.ttf", 0),
    "Khmr": ("NotoSansKhmer-Bold.ttf", 0), "Mymr": ("NotoSansMyanmar-Bold.ttf", 0),
    "Deva": ("NotoSansDevanagari-Bold.ttf", 0), "Beng": ("NotoSansBengali-Bold.ttf", 0),
    "Taml": ("NotoSansTamil-Bold.ttf", 0), "Sinh": ("NotoSansSinhala-Bold.ttf", 0),
    "Geor": ("NotoSansGeorgian-Bold.ttf", 0), "Armn": ("NotoSansArmenian-Bold.ttf", 0),
    "Ethi": ("NotoSansEthiopic-Bold.ttf", 0), "Tibt": ("NotoSerifTibetan-Bold.ttf", 0),
    "Telu": ("NotoSansTelugu-Bold.ttf", 0), "Knda": ("NotoSansKannada-Bold.ttf", 0),
    "Mlym": ("NotoSansMalayalam-Bold.ttf", 0), "Gujr": ("NotoSansGujarati-Bold.ttf", 0),
    "Guru": ("NotoSansGurmukhi-Bold.ttf", 0), "Jpan": ("NotoSansCJK-Bold.ttc", 0),
    "Kore": ("NotoSansCJK-Bold.ttc", 1), "Hans": ("NotoSansCJK-Bold.ttc", 2),
    "Hant": ("NotoSansCJK-Bold.ttc", 3),
}
FALLBACK_FONT = ("DejaVuSans-Bold.ttf", 0)
FONT_DIRS = _NOTO
