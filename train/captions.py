"""PIGEON's synthetic geo-captions for multi-task contrastive pretraining (docs/method.md §2.4;
released code: LukasHaas/PIGEON dataset_creation/pretrain/pretrain_dataset.py).

One fresh caption per access; every component is an independent uniform draw:

* region clause "in the region of {admin1} " p=0.6, town clause "close to the town of {town} " p=0.4 (if
  known);
* climate sentence "This location has {Koppen description, lower-cased}." p=0.4 (if known), e.g. "... has a
  temperate oceanic climate." (PIGEON's descriptive phrase, not the class name);
* location sentence "A Street View photo {town}{region}in {country}." p=0.7, always when there is no climate
  sentence;
* driving side p=0.3 (only without a climate sentence), compass p=0.3, month p=0.3;
* caption = location sentence, then the other sentences in random order.

With ``aux=False`` the caption is the location sentence alone (PIGEON without ``-a``).
"""
from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass

import numpy as np

from model.geo.geodata import load_or_none

P_REGION, P_TOWN, P_CLIMATE, P_LOCATION, P_DRIVING, P_COMPASS, P_MONTH = 0.6, 0.4, 0.4, 0.7, 0.3, 0.3, 0.3
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
# PIGEON prefixes "the" for a fixed list of plural / descriptive names; island groups are matched by suffix
_THE_NAMES = {"Bahamas", "Netherlands", "Philippines", "United States", "United Arab Emirates", "Maldives",
              "Czech Republic", "Dominican Republic", "United Kingdom", "Central African Republic", "Gambia"}
_RENAMES = {"United States Of America": "United States", "United States of America": "United States"}
_ISO2 = re.compile(r"^[A-Z]{2}$")
_ISO3166_2 = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
log = logging.getLogger(__name__)


@functools.cache
def country_name(value: str) -> str:
    """ISO alpha-2 code (via CLDR English names, offline) or a name -> PIGEON's caption form ('the
    Netherlands')."""
    value = value.strip()
    if _ISO2.match(value):
        from babel import Locale

        value = Locale("en").territories.get(value, value)
    value = _RENAMES.get(value, value)
    if value in _THE_NAMES or value.endswith(" Islands"):
        return f"the {value}"
    return value


def compass_word(direction_deg: float) -> str:
    """north if <= 45 or > 315, east (45, 135], south (135, 225], west (225, 315] (PIGEON's bins)."""
    d = direction_deg % 360
    if d <= 45 or d > 315:
        return "north"
    if d <= 135:
        return "east"
    return "south" if d <= 225 else "west"


@functools.lru_cache(maxsize=1)
def _admin1_names() -> dict[str, str]:
    g = load_or_none("region clauses for ISO 3166-2 admin-1 codes")
    return {} if g is None else dict(zip(g.admin1["iso_3166_2"], g.admin1["name"]))


def region_name(value: str) -> str:
    """Admin-1 name for captions; ISO 3166-2 codes ('US-PR') become names, '' if the code is unknown."""
    value = value.strip()
    if _ISO3166_2.match(value):
        return _admin1_names().get(value, "")
    return value


@functools.lru_cache(maxsize=1)
def koppen_descriptions() -> dict[str, str]:
    """Koppen code -> PIGEON's descriptive phrase, e.g. 'Cfb' -> 'a temperate oceanic climate'."""
    from model.geo.geodata import KOPPEN_DESCRIPTIONS

    def phrase(name: str) -> str:
        name = name.lower()
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name} climate"

    return {code: phrase(name) for code, name in KOPPEN_DESCRIPTIONS.items()}


@dataclass(frozen=True)
class CaptionInfo:
    """What one location's captions may mention; '' / None = unknown."""

    country: str = ""
    admin1: str = ""
    town: str = ""
    climate: str = ""  # descriptive phrase, lower case, e.g. "a temperate oceanic climate"
    driving_side: str = ""  # "left" / "right"
    heading_deg: float | None = None  # compass heading of view 0
    month: int | None = None  # 1..12

    @classmethod
    def from_aux(cls, aux: dict[str, str]) -> CaptionInfo:
        """From a dataset row's auxiliary columns (country, admin1, town, koppen, driving_side, heading,
        month)."""
        def num(key: str) -> float | None:
            try:
                v = float((aux.get(key) or "").strip())
            except ValueError:
                return None
            return v if np.isfinite(v) else None

        month = num("month")
        koppen = (aux.get("koppen") or "").strip()
        side = (aux.get("driving_side") or "").strip().lower()
        return cls(country=country_name(aux["country"]) if (aux.get("country") or "").strip() else "",
                   admin1=region_name(aux.get("admin1") or ""), town=(aux.get("town") or "").strip(),
                   climate=koppen_descriptions().get(koppen, "").strip(),
                   driving_side=side if side in ("left", "right") else "",
                   heading_deg=num("heading"),
                   month=int(month) if month is not None and 1 <= month <= 12 else None)


def sample_caption(rng: np.random.Generator, info: CaptionInfo, view_offset_deg: float = 0.0,
                   aux: bool = True) -> str:
    """One PIGEON Street View caption for ``info`` seen at ``view_offset_deg`` from view 0."""
    u = rng.random(7)  # fixed number of draws per caption keeps streams aligned across locations
    town = f"close to the town of {info.town} " if info.town and u[0] < P_TOWN else ""
    region = f"in the region of {info.admin1} " if info.admin1 and u[1] < P_REGION else ""
    country = info.country or "an unknown country"
    location = f"A Street View photo {town}{region}in {country}."
    if not aux:
        return location
    others = []
    climate = bool(info.climate) and u[2] < P_CLIMATE
    if climate:
        others.append(f"This location has {info.climate}.")
    if not climate and info.driving_side and u[3] < P_DRIVING:
        others.append(f"In this location, people drive on the {info.driving_side} side of the road.")
    if info.heading_deg is not None and u[4] < P_COMPASS:
        others.append(f"This photo is facing {compass_word(info.heading_deg + view_offset_deg)}.")
    if info.month is not None and u[5] < P_MONTH:
        others.append(f"The photo was taken in {MONTHS[info.month - 1]}.")
    rng.shuffle(others)
    keep_location = not climate or u[6] < P_LOCATION
    return " ".join(([location] if keep_location else []) + others).strip()
