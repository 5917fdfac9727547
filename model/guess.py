"""Which point a prediction plays, and the head's cell distribution. Torch-free.

``GUESS_MODES``: ``expected_score`` (the candidate point maximising the expected GeoGuessr score under the
cell distribution), ``refined`` (retrieval refinement; the head's guess when the run has no index) and
``head`` (the centroid of the most probable cell). ``DEFAULT_GUESS_MODE`` is the default of the Predictor,
``pigeon predict --mode`` and the bot's ``play.guess_mode``.
"""
from __future__ import annotations

from typing import Literal, get_args

import numpy as np

GuessMode = Literal["expected_score", "refined", "head"]
GUESS_MODES: tuple[str, ...] = get_args(GuessMode)
DEFAULT_GUESS_MODE: GuessMode = "expected_score"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Head logits (N, C) -> cell probabilities (N, C) in float64, each row summing to 1 (max-subtracted)."""
    logits = np.asarray(logits, dtype=np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return probs
