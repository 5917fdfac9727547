"""``BotConfig``: the bot's frozen config (browser, play, demo, live site), read from ``configs/bot.toml``.

Precedence as everywhere in pigeon: dataclass defaults < TOML file < ``section.key=value`` overrides. Relative
paths in the file are relative to the project root (the folder holding ``configs/``), so ``make demo`` and a
shell in any folder agree on where the demo checkpoint and the match log are.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from model.config import load_config
from model.guess import DEFAULT_GUESS_MODE, GUESS_MODES, GuessMode
from model.paths import CONFIG_DIR
from model.text.cue import TextCueConfig

DEFAULT_CONFIG = CONFIG_DIR / "bot.toml"


@dataclass(frozen=True)
class BrowserConfig:
    """Debian Chromium through Playwright's ``executable_path`` (``BrowserType.launch``,
    https://playwright.dev/python/docs/api/class-browsertype): never a downloaded browser."""

    executable: str = "/usr/bin/chromium"
    headless: bool = True
    viewport_width: int = 1024          # fixed, so every capture has the same size and crop
    viewport_height: int = 768
    timeout_ms: int = 15_000            # default bound of every locator wait
    navigation_timeout_ms: int = 30_000
    slow_mo_ms: int = 0                 # Playwright's slow motion, for watching a headed run
    extra_flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (200 <= self.viewport_width <= 4000 and 200 <= self.viewport_height <= 4000):
            raise ValueError(f"viewport must be 200..4000 px per side, got {self.viewport_width}x{self.viewport_height}")
        if self.timeout_ms < 100 or self.navigation_timeout_ms < 100:
            raise ValueError("browser timeouts must be at least 100 ms")


@dataclass(frozen=True)
class PlayConfig:
    """How the controller plays a game."""

    rounds: int = 5
    mode: Literal["classic", "duel"] = "classic"
    views: int = 4                                  # headings captured per round (0, 90, 180, 270 deg)
    human_delay_s: tuple[float, float] = (0.0, 0.0)  # uniform delay before capturing; PIGEON's extension: (2, 9)
    fast_below_s: float = 20.0     # with less time left than this, skip the delay and guess at once
    max_attempts: int = 3          # capture+guess attempts per round (an error re-observes before retrying)
    poll_s: float = 1.0            # one bounded wait while nothing changes (opponent, next round); docs/bot.md
    stall_timeout_s: float = 180.0  # a game whose state does not change this long is an error; also the
                                    # longest outage the bot rides out (retries with backoff) before giving up
    backoff_max_s: float = 8.0     # retries after a failed reload wait 0.5, 1, 2, ... up to this many seconds
    guess_margin_s: float = 3.0    # with a round clock: the guess must be in at least this long before the end
    est_view_s: float = 1.5        # first guess of the time one heading's capture takes (then measured)
    est_guess_s: float = 2.0       # first guess of inference + placing the guess (then measured)
    pad_views: bool = True         # fewer headings than `views` (NMPZ, a short clock): repeat them up to `views`,
                                   # for runs that fuse a fixed number of views (docs/bot.md, "Rules")
    pin_km_per_px: float = 0.5     # zoom the guess map until one pixel is at most this many km
    guess_mode: GuessMode = DEFAULT_GUESS_MODE  # which Predictor point to play (model.guess)
    api_fallback: bool = True      # place the guess through the site's API when the map route fails
    post_predictions: bool = True  # arena: send top-k + heat map to the stream overlay
    player_name: str = "pigeon-bot"
    screenshots_dir: str = "runs/bot/screenshots"
    matchlog: str = "runs/bot/matchlog.sqlite"

    def __post_init__(self) -> None:
        lo, hi = self.human_delay_s
        if not (0 <= lo <= hi <= 120):
            raise ValueError(f"human_delay_s must be (min, max) with 0 <= min <= max <= 120, got {self.human_delay_s}")
        if not 1 <= self.rounds <= 100:
            raise ValueError(f"rounds must be 1..100, got {self.rounds}")
        if self.guess_mode not in GUESS_MODES:
            raise ValueError(f"guess_mode must be one of {', '.join(GUESS_MODES)}, got {self.guess_mode!r}")
        if not 1 <= self.views <= 16:
            raise ValueError(f"views must be 1..16, got {self.views}")
        if self.max_attempts < 1 or self.poll_s <= 0 or self.stall_timeout_s <= 0 or self.pin_km_per_px <= 0:
            raise ValueError("max_attempts >= 1 and positive poll_s, stall_timeout_s, pin_km_per_px are required")
        if self.backoff_max_s <= 0 or min(self.guess_margin_s, self.est_view_s, self.est_guess_s) < 0:
            raise ValueError("backoff_max_s must be > 0 and guess_margin_s, est_view_s, est_guess_s >= 0")


@dataclass(frozen=True)
class DemoConfig:
    """``pigeon demo``: the shipped checkpoint plays the held-out split of the demo world in the arena."""

    run: str = "checkpoints/demo"
    world: str = "checkpoints/demo/holdout"
    split: str = "test"
    rounds: int = 5
    arena_db: str = "runs/bot/demo-arena.sqlite"
    device: str = "auto"


@dataclass(frozen=True)
class GeoGuessrConfig:
    """The live site (docs/bot.md, "Live site (geoguessr.com): caveats"). Tests point
    ``base_url``/``game_server_url`` at local fixtures."""

    base_url: str = "https://www.geoguessr.com"
    game_server_url: str = "https://game-server.geoguessr.com"
    selectors: str = "configs/selectors/geoguessr.toml"
    cookie_env: str = "GEOGUESSR_NCFA"
    tile_settle_ms: int = 1250     # after setting a heading, wait for the spinner to go plus this for tiles
    guess_map_zoom: float = 8.0    # zoom the hooked guess map to before clicking (~0.6 km per pixel)
    min_request_interval_s: float = 1.0  # the bot's own requests to the site: at most one per this interval
    storage_state: str = "runs/bot/geoguessr-state.json"  # `pigeon login` writes it (0600); used without a cookie
    record_dir: str = ""           # `--record DIR`: scrubbed DOM + JSON snapshots of every state change

    def __post_init__(self) -> None:
        if not 0 <= self.min_request_interval_s <= 60:
            raise ValueError(f"min_request_interval_s must be 0..60 s, got {self.min_request_interval_s}")


@dataclass(frozen=True)
class BotConfig:
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    play: PlayConfig = field(default_factory=PlayConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    geoguessr: GeoGuessrConfig = field(default_factory=GeoGuessrConfig)
    text_cue: TextCueConfig = field(default_factory=TextCueConfig)  # model.text.cue: read the signs


def load_bot_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> BotConfig:
    """BotConfig from ``path`` (default ``configs/bot.toml`` when it exists) plus ``key=value`` overrides."""
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    return load_config(BotConfig, path, overrides)  # __post_init__ errors come back as ConfigError

