"""The `pigeon` entry point: what a user sees on the terminal around the verbs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_PROBE = ("import logging, sys; from pigeon.cli import configure_logging; configure_logging({verbose});"
             "import faiss; logging.getLogger('model.probe').info('own progress line')")


def _stderr(verbose: bool) -> str:
    r = subprocess.run([sys.executable, "-c", LOG_PROBE.format(verbose=verbose)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stderr


def test_third_party_loaders_stay_quiet_unless_verbose():
    quiet = _stderr(False)
    assert "own progress line" in quiet  # our packages still report progress at INFO
    assert "faiss" not in quiet and "Could not load library" not in quiet
    assert "faiss.loader" in _stderr(True)  # -v shows everything
