"""Shared fixtures. Real parts: Debian Chromium through Playwright, servers on 127.0.0.1, SQLite on disk."""
from __future__ import annotations

import os

import pytest

from bot.driver import CHROMIUM_FLAGS

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session", autouse=True)
def _embedding_cache(tmp_path_factory):
    """The default embedding cache (``model.paths.cache_dir()``) is one temporary folder for the session (set
    before any module fixture trains a run), never the checkout's data/cache. Cache files are content-addressed,
    so tests can share it."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PIGEON_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright: launch Debian's Chromium (never a downloaded browser)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": list(CHROMIUM_FLAGS)}
