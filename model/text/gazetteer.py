"""An offline gazetteer of GeoNames places (the setup's ``places.csv``) with exact, prefix and fuzzy lookup.

Names are compared after normalisation (``normalize``: Unicode compatibility decomposition, accents dropped,
case folded, everything but letters and digits removed), so "Barajas de Madrid", "BARAJAS-DE-MADRID" and an OCR
read "BarajasdeMadrid" are one key. A lookup returns every place carrying a matching name: a "San Jose" read
finds the San Joses of every country, and the caller spreads its belief over all of them (``model.text.cue``).

Match quality in [0, 1]: 1 for an exact key; ``fuzz.ratio / 100`` (rapidfuzz, edit-distance similarity) for a
near miss above ``fuzzy_cutoff`` (an OCR read with a dropped or wrong letter); and for a read that is a prefix
of a longer name (a truncated sign read, "Svencion" for "Svencioneliai") ``0.7 + 0.25 * len(read) / len(name)``,
below an exact match.
"""
from __future__ import annotations

import bisect
import math
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np


def normalize(text: str) -> str:
    """Lookup key of a name: NFKD, combining marks dropped, casefolded, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = (c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in "".join(kept).casefold() if c.isalnum())


@dataclass(frozen=True)
class Place:
    name: str
    lat: float
    lon: float
    country: str
    population: float


@dataclass(frozen=True)
class NameMatch:
    """Places carrying one matched name; ``quality`` in [0, 1] as in the module docstring."""

    key: str
    quality: float
    kind: str  # exact | fuzzy | prefix
    rows: tuple[int, ...]


class Gazetteer:
    """Places (N rows) indexed by normalised name. Build with :meth:`from_places` or :func:`load_gazetteer`."""

    def __init__(self, names: list[str], lat: np.ndarray, lon: np.ndarray, country: list[str],
                 population: np.ndarray, min_population: float = 0.0):
        self.names = list(names)
        self.lat = np.asarray(lat, np.float64)
        self.lon = np.asarray(lon, np.float64)
        self.country = list(country)
        self.population = np.nan_to_num(np.asarray(population, np.float64), nan=0.0)
        if not (len(self.names) == len(self.lat) == len(self.lon) == len(self.country) == len(self.population)):
            raise ValueError("gazetteer columns differ in length")
        by_key: dict[str, list[int]] = {}
        for i, name in enumerate(self.names):
            if self.population[i] < min_population:
                continue
            key = normalize(name)
            if len(key) >= 2:
                by_key.setdefault(key, []).append(i)
        self._rows = {k: tuple(v) for k, v in by_key.items()}
        self.keys = sorted(self._rows)
        self._by_length = sorted(self.keys, key=len)        # for the near-miss search: a slice per length range
        self._lengths = [len(k) for k in self._by_length]

    @classmethod
    def from_places(cls, df, min_population: float = 0.0) -> "Gazetteer":
        """From a DataFrame with columns name, lat, lon, cc, population (``GeoData.places()``)."""
        missing = {"name", "lat", "lon", "cc", "population"} - set(df.columns)
        if missing:
            raise ValueError(f"places table lacks column(s) {', '.join(sorted(missing))}")
        return cls(df["name"].fillna("").astype(str).tolist(), df["lat"].to_numpy(), df["lon"].to_numpy(),
                   df["cc"].fillna("").astype(str).tolist(), df["population"].to_numpy(), min_population)

    def __len__(self) -> int:
        return len(self.names)

    def place(self, row: int) -> Place:
        return Place(self.names[row], float(self.lat[row]), float(self.lon[row]), self.country[row],
                     float(self.population[row]))

    def lookup(self, text: str, fuzzy_cutoff: float = 0.85, min_length: int = 4, fuzzy_min_length: int = 6,
               limit: int = 5) -> list[NameMatch]:
        """Names matching ``text``, best first: the exact key, else near misses and prefixes (at most ``limit``).

        Reads shorter than ``min_length`` normalised characters match nothing (too many places are called "Ai");
        near misses and prefixes need ``fuzzy_min_length`` ("City" is one letter from "Coity").
        """
        from rapidfuzz import fuzz, process

        key = normalize(text)
        if len(key) < min_length:
            return []
        if key in self._rows:
            return [NameMatch(key, 1.0, "exact", self._rows[key])]
        if len(key) < fuzzy_min_length:
            return []
        found: dict[str, NameMatch] = {}
        # fuzz.ratio = 2 M / (a + b) >= c needs c / (2 - c) <= b / a <= (2 - c) / c: only those lengths
        lo, hi = math.ceil(len(key) * fuzzy_cutoff / (2 - fuzzy_cutoff)), math.floor(len(key) * (2 - fuzzy_cutoff)
                                                                                       / fuzzy_cutoff)
        pool = self._by_length[bisect.bisect_left(self._lengths, lo):bisect.bisect_right(self._lengths, hi)]
        for name, score, _ in process.extract(key, pool, scorer=fuzz.ratio, limit=limit,
                                              score_cutoff=fuzzy_cutoff * 100.0):
            found[name] = NameMatch(name, float(score) / 100.0, "fuzzy", self._rows[name])
        i = bisect.bisect_left(self.keys, key)
        while i < len(self.keys) and self.keys[i].startswith(key) and len(found) < 4 * limit:
            name = self.keys[i]
            q = 0.7 + 0.25 * len(key) / len(name)
            if name not in found or found[name].quality < q:
                found[name] = NameMatch(name, q, "prefix", self._rows[name])
            i += 1
        return sorted(found.values(), key=lambda m: (-m.quality, m.key))[:limit]


@lru_cache(maxsize=2)
def _cached(path: str, mtime: float, min_population: float) -> Gazetteer:  # noqa: ARG001 (mtime keys the cache)
    import pandas as pd

    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"cc": str})
    return Gazetteer.from_places(df, min_population)


def load_gazetteer(geodata_dir: str | Path | None = None, min_population: float = 0.0) -> Gazetteer:
    """The gazetteer of the setup's geodata (``places.csv``), cached per process."""
    from model.geo.geodata import GeoData

    path = GeoData(geodata_dir)._file("places.csv", "GeoNames places")
    return _cached(str(path), path.stat().st_mtime, float(min_population))
