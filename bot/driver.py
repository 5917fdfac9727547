"""The one place that builds browsers, contexts and pages (Playwright + Debian Chromium).

``open_browser(cfg)`` starts Playwright and launches Chromium from ``cfg.executable`` (never a downloaded
browser) with the flags below, headless or headed; ``new_context`` gives a fixed viewport and the config's
default timeouts, so every locator wait in the adapters is bounded without repeating numbers.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.config import BrowserConfig

log = logging.getLogger(__name__)
# every Chromium this project launches (the bot, and the tests through pytest-playwright) gets these flags.
# The GPU process is off: in software it costs CPU on every frame, and the arena needs no WebGL (capturing a
# round's four headings took a median 5.8 s with a SwiftShader GPU process vs 1.8 s with --disable-gpu, same
# load, alternating runs; docs/bot.md, "Headless WebGL").
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
# geoguessr.com's Street View needs WebGL: it goes through SwiftShader, asked for explicitly, because recent
# Chromium deprecates the automatic software-WebGL fallback (chromedp/chromedp PR #1581). These replace
# --disable-gpu for that site only; tests/test_bot_geoguessr.py checks WebGL 1 and 2 render with them.
WEBGL_FLAGS = ("--use-angle=swiftshader", "--enable-unsafe-swiftshader")


def chromium_flags(headless: bool = True, webgl: bool = False) -> list[str]:
    """The flag list for a launch: ``CHROMIUM_FLAGS``, with ``WEBGL_FLAGS`` instead of --disable-gpu when the
    site needs WebGL."""
    flags = [f for f in CHROMIUM_FLAGS if (headless or f != "--headless") and not (webgl and f == "--disable-gpu")]
    return flags + (list(WEBGL_FLAGS) if webgl else [])


def launch_args(cfg: BrowserConfig, webgl: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``chromium.launch``: executable, flags (``--headless`` only when headless; WebGL
    flags for a site that needs them)."""
    exe = Path(cfg.executable)
    if not exe.is_file():
        raise FileNotFoundError(f"Chromium not found at {exe}: install Debian's `chromium` (make setup) or set "
                                "[browser] executable in configs/bot.toml")
    flags = chromium_flags(cfg.headless, webgl) + list(cfg.extra_flags)
    return {"executable_path": str(exe), "headless": cfg.headless, "args": flags, "slow_mo": cfg.slow_mo_ms or None}


@contextlib.contextmanager
def open_browser(cfg: BrowserConfig, webgl: bool = False) -> Iterator[Any]:
    """Playwright + a launched Chromium ``Browser`` for the duration of the ``with`` block (``webgl``: for
    geoguessr.com's Street View)."""
    from playwright.sync_api import sync_playwright

    args = launch_args(cfg, webgl)
    if not cfg.headless and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise ValueError("--headed needs a display (DISPLAY is not set); run headless or under xvfb-run")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**{k: v for k, v in args.items() if v is not None})
        log.debug("launched %s %s", args["executable_path"], browser.version)
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Any, cfg: BrowserConfig, **kwargs: Any) -> Any:
    """A fresh context: fixed viewport, device scale 1 (captures are the same size everywhere), config timeouts.
    ``storage_state=path`` (Playwright) restores a saved login (``pigeon login``)."""
    ctx = browser.new_context(viewport={"width": cfg.viewport_width, "height": cfg.viewport_height},
                              device_scale_factor=1, **kwargs)
    ctx.set_default_timeout(cfg.timeout_ms)
    ctx.set_default_navigation_timeout(cfg.navigation_timeout_ms)
    return ctx


def close_context(context: Any) -> None:
    """Close a context without racing its route handlers: routes go first (their errors ignored), so a
    response still in flight cannot fail inside a handler after the context is gone."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        context.unroute_all(behavior="ignoreErrors")
    except PlaywrightError:
        pass
    context.close()


def new_page(context: Any) -> Any:
    """A page of ``context`` (the context's default timeouts apply)."""
    return context.new_page()
