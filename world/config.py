"""``WorldConfig``: the frozen configuration of the synthetic street world (``configs/world.toml``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from model.config import load_config
from model.paths import CONFIG_DIR
from world.style import STREETVIEW_COVERAGE

DEFAULT_CONFIG_PATH = CONFIG_DIR / "world.toml"
_ISO_RE = re.compile(r"^[A-Z]{2}$")


def _check_codes(codes: Iterable[str], what: str) -> None:
    bad = [c for c in codes if not _ISO_RE.match(c)]
    if bad:
        raise ValueError(
            f"{what}: {', '.join(map(repr, bad))} not ISO 3166-1 alpha-2 code(s) (two capital letters)"
        )


@dataclass(frozen=True)
class SamplerConfig:
    """Where locations fall: near GeoNames places in covered countries, weighted like street-view coverage."""

    countries: tuple[str, ...] = STREETVIEW_COVERAGE  # allowed countries (ISO alpha-2); empty = every country
    include: tuple[str, ...] = ()  # added to ``countries``
    exclude: tuple[str, ...] = ()  # removed from ``countries``
    population_alpha: float = 0.5  # place weight = max(population, population_floor) ** alpha
    population_floor: int = 1000
    country_balance: float = 0.5  # 0 = pure population weighting, 1 = every country the same total weight
    jitter_km: float = 3.0  # mean radial offset of a location from its place (exponential)
    oversample: float = 1.6  # candidates drawn per wanted location (sea/border rejections)

    def __post_init__(self) -> None:
        for name in ("countries", "include", "exclude"):
            _check_codes(getattr(self, name), f"sampler.{name}")
        if not (0.0 <= self.population_alpha <= 2.0):
            raise ValueError(f"sampler.population_alpha={self.population_alpha} must be in [0, 2]")
        if not (0.0 <= self.country_balance <= 1.0):
            raise ValueError(f"sampler.country_balance={self.country_balance} must be in [0, 1]")
        if self.jitter_km < 0 or self.population_floor < 1 or self.oversample < 1.0:
            raise ValueError(
                "sampler: jitter_km >= 0, population_floor >= 1 and oversample >= 1 are required"
            )

    def allowed(self) -> tuple[str, ...]:
        """The final country filter, sorted; empty means no filter."""
        if not self.countries and not self.include:
            return ()
        return tuple(sorted((set(self.countries) | set(self.include)) - set(self.exclude)))


@dataclass(frozen=True)
class SplitConfig:
    """Held-out splits by random geographic blocks plus a distance buffer (see ``world.sampler``)."""

    val_fraction: float = 0.1
    test_fraction: float = 0.1
    block_deg: float = 1.0  # side of the lat/lon blocks that are assigned to a split as a whole
    min_km: float = 10.0  # every val/test location is at least this far from every train location

    def __post_init__(self) -> None:
        if self.val_fraction < 0 or self.test_fraction < 0 or self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"split fractions val={self.val_fraction} test={self.test_fraction} must be >= 0 "
                "and sum to less than 1"
            )
        if not (0.01 <= self.block_deg <= 90) or self.min_km < 0:
            raise ValueError(f"split.block_deg={self.block_deg} must be in [0.01, 90] and min_km >= 0")


@dataclass(frozen=True)
class RenderConfig:
    """How each location is drawn: image size, camera and weather randomness."""

    image_size: int = 512  # signs legible to a person and to the text cue (model.text); models resize
    views: tuple[int, ...] = (0, 90, 180, 270)  # heading offsets; view 0 looks along the road
    jpeg_quality: int = 90
    fov_deg: float = 90.0
    fov_jitter_deg: float = 8.0
    pitch_jitter_deg: float = 3.0
    camera_height_m: float = 2.5
    weather: tuple[float, float, float, float, float] = (
        0.45,
        0.25,
        0.15,
        0.1,
        0.05,
    )  # clear, cloudy, overcast, haze, rain
    hour_margin: float = 0.12  # keep the capture time this fraction of the day length away from dusk
    month_weights: tuple[float, ...] = (0.6, 0.7, 0.9, 1.0, 1.1, 1.2, 1.2, 1.2, 1.0, 0.9, 0.7, 0.6)
    # (Google drives more in the local summer; weights are for the north, shifted 6 months in the south)

    def __post_init__(self) -> None:
        if not (32 <= self.image_size <= 2048):
            raise ValueError(f"render.image_size={self.image_size} must be between 32 and 2048 pixels")
        if (
            not self.views
            or any(not (0 <= v < 360) for v in self.views)
            or len(set(self.views)) != len(self.views)
        ):
            raise ValueError(f"render.views={self.views} must be distinct headings in [0, 360)")
        if not (1 <= self.jpeg_quality <= 100):
            raise ValueError(f"render.jpeg_quality={self.jpeg_quality} must be in [1, 100]")
        if not (30 <= self.fov_deg <= 150):
            raise ValueError(f"render.fov_deg={self.fov_deg} must be in [30, 150]")
        if len(self.weather) != 5 or min(self.weather) < 0 or sum(self.weather) <= 0:
            raise ValueError(
                "render.weather needs 5 non-negative weights (clear, cloudy, overcast, haze, rain)"
            )
        if len(self.month_weights) != 12 or min(self.month_weights) < 0 or sum(self.month_weights) <= 0:
            raise ValueError("render.month_weights needs 12 non-negative weights")


@dataclass(frozen=True)
class WorldConfig:
    """Everything ``pigeon world render`` needs besides seed, count and output folder."""

    name: str = "synthetic-street-world"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    render: RenderConfig = field(default_factory=RenderConfig)


def load_world_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> WorldConfig:
    """``configs/world.toml`` (or ``path``) plus ``section.key=value`` overrides, validated."""
    return load_config(WorldConfig, DEFAULT_CONFIG_PATH if path is None else path, overrides)
