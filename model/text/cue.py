"""The text cue: what the signs say, turned into evidence about where we are, fused with the image distribution.

Three kinds of evidence come out of the text read on a location's views (``observe``):

* **Place names.** Each read (distances such as "15 km" and known sign words such as "Hotel" stripped) is looked
  up in the GeoNames gazetteer (``model.text.gazetteer``). A name carried by several places ("San Jose") yields
  one candidate per place, weighted by population (``population_alpha``) within the read; a near-miss or
  truncated read is discounted by its match quality (``quality ** match_power``).
* **Script.** Two or more letters of a non-Latin script (Cyrillic, Greek, Arabic, Hebrew, Thai, Hangul, Kana,
  Han, Devanagari, ...) favour the countries whose signs are written in it (``model.geo.lexicon``).
* **Local words.** A sign word that only a few countries use ("Viesnica": Latvia; "Keskusta": Finland) favours
  those countries.

Fusion (``fuse``) is a mixture over hypotheses. H_k: "we are at matched place k"; H_0: "the reads do not locate
us" (garbage, a sign pointing elsewhere, a name we failed to match). With the image distribution p over geocells
(after the script/word prior), r_k = w_k * (C * p[cell_k]) ** image_power and r_0 = null_weight, so
P(H_k) = r_k / (r_0 + sum_j r_j): a read agreeing with the image wins, a read the image finds implausible does
not. The fused distribution is P(H_0) * p + sum_k P(H_k) * onehot(cell_k). When the places around one candidate
(within ``snap_radius_km`` plus the distance a sign gives) hold at least ``snap_threshold`` of the belief, the
guess snaps to that candidate. No reads, or reads that match nothing, leave p exactly
unchanged. The weights are tuned on a validation render (``scripts/tune_text_cue.py`` on 222 locations of a
512 px seed-5 render: played guess 2,754 -> 3,483 with the defaults below; docs/text_cue.md), never on test.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from model.geo.lexicon import COUNTRY_LANGUAGE, LANGUAGE_WORDS, SHOP_WORDS
from model.text.engines import TextRead
from model.text.gazetteer import Gazetteer, normalize
from model.text.scripts import chars_of_language_script, script_of

_DISTANCE = re.compile(r"(\d+(?:[.,]\d+)?)\s*(km|mi|m)\b", re.IGNORECASE)
_MI_KM = 1.609344


@dataclass(frozen=True)
class TextCueConfig:
    """The text cue's switches and weights ([text_cue] in a bot or predictor config)."""

    enabled: bool = True
    engine: str = "rapidocr"          # model.text.engines.ENGINES
    det_limit_side_len: int = 736     # OCR detector input (shorter side), px; 512 px views are upsampled
    ocr_workers: int = 0              # engines reading views side by side (0 = one per core, at most 4)
    min_confidence: float = 0.6       # OCR line confidence below this is ignored
    min_length: int = 4               # normalised characters a read needs to be looked up (exactly)
    fuzzy_min_length: int = 6         # ... and to be matched approximately ("City" is not "Coity")
    fuzzy_cutoff: float = 0.85        # edit-distance similarity for a near-miss name
    population_alpha: float = 0.5     # weight of a same-name place ~ population ** alpha
    match_power: float = 4.0          # weight ~ match quality ** match_power
    null_weight: float = 1.0          # r_0: belief that the reads do not locate us
    image_power: float = 0.25         # how much the image distribution may veto a read
    snap_threshold: float = 0.2       # belief near one place above which the guess is that place
    snap_radius_km: float = 30.0      # places this close (plus a sign's distance) support each other
    script_weight: float = 3.0        # script evidence multiplies matching countries' cells by 1 + weight
    word_weight: float = 10.0         # the same for a local sign word
    max_word_countries: int = 6       # words used in more countries than this carry no prior ("Hotel")

    def __post_init__(self) -> None:
        bad = [k for k in ("null_weight", "image_power", "script_weight", "word_weight", "match_power",
                           "population_alpha") if getattr(self, k) < 0]
        if bad or not (0 < self.snap_threshold <= 1) or not (0 < self.fuzzy_cutoff <= 1):
            raise ValueError(f"text_cue: weights must be >= 0 ({', '.join(bad) or 'ok'}), snap_threshold and "
                             f"fuzzy_cutoff in (0, 1]; got {asdict(self)}")


@dataclass(frozen=True)
class PlaceCandidate:
    """One place a read may name; ``weight`` = quality ** match_power * population share within the read."""

    read: str
    name: str
    lat: float
    lon: float
    country: str
    population: float
    quality: float
    kind: str
    weight: float
    distance_km: float | None = None  # "Lapua 15 km": the sign says the place is this far away

    def to_dict(self) -> dict:
        d = asdict(self)
        d["weight"], d["quality"] = round(self.weight, 4), round(self.quality, 3)
        return d


@dataclass
class TextEvidence:
    reads: list[TextRead] = field(default_factory=list)
    candidates: list[PlaceCandidate] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)               # non-Latin scripts seen
    words: dict[str, list[str]] = field(default_factory=dict)       # local word -> countries

    @property
    def empty(self) -> bool:
        return not (self.candidates or self.scripts or self.words)

    def to_dict(self) -> dict:
        return {"reads": [r.to_dict() for r in self.reads], "candidates": [c.to_dict() for c in self.candidates],
                "scripts": self.scripts, "words": self.words}


@dataclass
class FusedText:
    """The fused distribution, the snapped point (or None) and the per-place posteriors, best first."""

    probs: np.ndarray
    snap: tuple[float, float] | None
    posteriors: list[tuple[PlaceCandidate, float]]
    null_posterior: float

    @property
    def best(self) -> tuple[PlaceCandidate, float] | None:
        return self.posteriors[0] if self.posteriors else None

    def summary(self) -> dict:
        best = self.best
        return {"snapped": self.snap is not None, "null_posterior": round(self.null_posterior, 4),
                "best": ({"name": best[0].name, "country": best[0].country, "lat": best[0].lat,
                          "lon": best[0].lon, "posterior": round(best[1], 4), "read": best[0].read}
                         if best else None)}


@lru_cache(maxsize=4)
def word_countries(max_countries: int) -> dict[str, tuple[str, ...]]:
    """Normalised sign word -> countries whose signs use it (only words of at most ``max_countries``)."""
    out: dict[str, set[str]] = defaultdict(set)
    for cc, lang in COUNTRY_LANGUAGE.items():
        words = LANGUAGE_WORDS.get(lang, ("", "", ""))[1:] + (SHOP_WORDS.get(lang, ""),)
        for w in words:
            key = normalize(w)
            if len(key) >= 4:
                out[key].add(cc)
    return {k: tuple(sorted(v)) for k, v in out.items() if len(v) <= max_countries}


@lru_cache(maxsize=1)
def sign_words() -> frozenset[str]:
    """Every normalised sign word in the lexicon (never looked up as a place name)."""
    out = set()  # whole phrases only: "Kota" is a city as well as the second word of "Pusat Kota"
    for _script, centre, stop in LANGUAGE_WORDS.values():
        out |= {normalize(centre), normalize(stop)}
    out |= {normalize(w) for w in SHOP_WORDS.values()} | {"hotel", "motel", "stop", "centre", "center"}
    return frozenset(w for w in out if w)


@lru_cache(maxsize=1)
def script_countries() -> dict[str, tuple[str, ...]]:
    """Character script -> countries whose sign language is written in it."""
    out: dict[str, set[str]] = defaultdict(set)
    for cc, lang in COUNTRY_LANGUAGE.items():
        for s in chars_of_language_script(LANGUAGE_WORDS.get(lang, ("Latn",))[0]):
            out[s].add(cc)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _split_distance(text: str) -> tuple[str, float | None]:
    """("Lapua 15 km") -> ("Lapua", 15.0); miles are converted to km."""
    m = _DISTANCE.search(text)
    if not m:
        return text, None
    value = float(m.group(1).replace(",", "."))
    unit = m.group(2).lower()
    km = value * _MI_KM if unit == "mi" else value / 1000.0 if unit == "m" else value
    return (text[:m.start()] + text[m.end():]).strip(), km


def _strip_sign_words(text: str) -> str:
    words = sign_words()
    return " ".join(w for w in text.split() if normalize(w) not in words)


class TextCue:
    """Evidence from reads (``observe``) and its fusion with a geocell distribution (``fuse``)."""

    def __init__(self, gazetteer: Gazetteer, cfg: TextCueConfig = TextCueConfig()):
        self.gazetteer, self.cfg = gazetteer, cfg

    # ------------------------------------------------------------------ evidence
    def observe(self, reads: list[TextRead]) -> TextEvidence:
        cfg = self.cfg
        ev = TextEvidence(reads=list(reads))
        seen_scripts: set[str] = set()
        words = word_countries(cfg.max_word_countries)
        for r in reads:
            if r.confidence < cfg.min_confidence:
                continue
            text = r.text.strip()
            script = script_of(text)
            letters = sum(ch.isalpha() for ch in text)
            if script and script != "Latn" and letters >= 2:
                seen_scripts.add(script)
            for w in text.split():
                key = normalize(w)
                if key in words:
                    ev.words[w] = list(words[key])
            name, dist = _split_distance(text)
            if normalize(name) in sign_words():  # "City Centre" is a sign, not a place
                continue
            name = _strip_sign_words(name)          # "Hotel Riga" -> "Riga"
            ev.candidates.extend(self._candidates(r.text, name, dist))
        ev.scripts = sorted(seen_scripts)
        return ev

    def _candidates(self, read: str, name: str, dist: float | None) -> list[PlaceCandidate]:
        cfg, g = self.cfg, self.gazetteer
        matches = g.lookup(name, fuzzy_cutoff=cfg.fuzzy_cutoff, min_length=cfg.min_length,
                           fuzzy_min_length=cfg.fuzzy_min_length)
        rows = [(row, m) for m in matches for row in m.rows]
        if not rows:
            return []
        pop = np.array([max(g.population[row], 1.0) for row, _ in rows]) ** cfg.population_alpha
        share = pop / pop.sum()
        out = []
        for (row, m), s in zip(rows, share):
            p = g.place(row)
            out.append(PlaceCandidate(read, p.name, p.lat, p.lon, p.country, p.population, m.quality, m.kind,
                                      float(m.quality ** cfg.match_power * s), dist))
        return out

    # ------------------------------------------------------------------ fusion
    def country_prior(self, ev: TextEvidence, cell_country: list[str]) -> np.ndarray:
        """(C,) multiplicative prior on cells from scripts and local words (all ones without such evidence)."""
        prior = np.ones(len(cell_country))
        groups = [(self.cfg.script_weight, set(script_countries().get(s, ()))) for s in ev.scripts]
        groups += [(self.cfg.word_weight, set(cs)) for cs in ev.words.values()]
        for weight, countries in groups:
            if countries:
                prior *= 1.0 + weight * np.array([c in countries for c in cell_country], dtype=np.float64)
        return prior

    def fuse(self, probs: np.ndarray, centroids_deg: np.ndarray, cell_country: list[str],
             ev: TextEvidence) -> FusedText:
        """Fuse the image distribution ``probs`` (C,) with the evidence; see the module docstring."""
        from model.geo.geography import pairwise_haversine_km

        cfg = self.cfg
        probs = np.asarray(probs, np.float64)
        if ev.empty:
            return FusedText(probs, None, [], 1.0)
        p = probs * self.country_prior(ev, cell_country)
        p = p / p.sum() if p.sum() > 0 else probs
        if not ev.candidates:
            return FusedText(p, None, [], 1.0)
        merged: dict[tuple[str, float, float], PlaceCandidate] = {}
        weight: dict[tuple[str, float, float], float] = defaultdict(float)
        for c in ev.candidates:  # one place read twice (town sign + shop sign) adds up
            key = (c.name, c.lat, c.lon)
            merged.setdefault(key, c)
            weight[key] += c.weight
        keys = list(merged)
        pts = np.array([[merged[k].lat, merged[k].lon] for k in keys])
        cells = _cell_of(pts, [merged[k].country for k in keys], centroids_deg, cell_country,
                         pairwise_haversine_km)
        n = len(p)
        r = np.array([weight[k] for k in keys]) * (n * p[cells]) ** cfg.image_power
        total = cfg.null_weight + r.sum()
        post, null = r / total, cfg.null_weight / total
        fused = null * p
        np.add.at(fused, cells, post)
        order = np.argsort(-post)
        posteriors = [(merged[keys[i]], float(post[i])) for i in order]
        return FusedText(fused / fused.sum(), self._snap(pts, [merged[k] for k in keys], post, pairwise_haversine_km),
                         posteriors, float(null))

    def _snap(self, pts: np.ndarray, cands: list[PlaceCandidate], post: np.ndarray, distance):
        """The place to snap to, or None: the candidate whose neighbourhood holds the most belief (a town sign
        and a direction sign pointing 15 km away support each other), if that belief reaches the threshold;
        among a neighbourhood, a place we stand at (no distance on the sign) before one the sign points to."""
        reach = np.array([self.cfg.snap_radius_km + (c.distance_km or 0.0) for c in cands])
        near = distance(pts, pts) <= reach[None, :]
        mass = near.astype(np.float64) @ post
        rank = mass - 1e-6 * np.array([c.distance_km or 0.0 for c in cands])
        k = int(np.argmax(rank))
        return (cands[k].lat, cands[k].lon) if mass[k] >= self.cfg.snap_threshold else None


def _cell_of(points_deg: np.ndarray, countries: list[str], centroids_deg: np.ndarray, cell_country: list[str],
             distance) -> np.ndarray:
    """Geocell of each point: the nearest centroid among the cells of the point's country, else the nearest."""
    d = distance(points_deg, centroids_deg)
    cc = np.asarray(cell_country)
    same = cc[None, :] == np.asarray(countries)[:, None]
    masked = np.where(same, d, np.inf)
    has = same.any(1)
    return np.where(has, masked.argmin(1), d.argmin(1))


def load_text_cue(cfg: TextCueConfig = TextCueConfig(), geodata_dir=None) -> TextCue:
    from model.text.gazetteer import load_gazetteer

    return TextCue(load_gazetteer(geodata_dir), cfg)
