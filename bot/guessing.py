"""The bridge from a trained run to the controller's ``guess(views) -> GuessResult`` callable.

``model.inference`` (and with it torch) is imported only inside ``load_guess_fn``, so the controller, the sites
and their tests never load torch.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.sites.base import GuessResult
from model.guess import DEFAULT_GUESS_MODE

HEAT_MIN_P = 1e-3
MAX_HEAT = 4096
TOP_K = 10


def predictor_guess_fn(predictor: Any, heat_min_p: float = HEAT_MIN_P, max_heat: int = MAX_HEAT):
    """Wrap a ``model.inference.Predictor``: the guess is its ``guess`` point; top-k are its top cells and the
    heat map is every geocell centroid with probability >= ``heat_min_p`` (at most ``max_heat``, largest first)."""

    def guess(views: Sequence[bytes], decay_km: float | None = None) -> GuessResult:
        p = predictor.predict(list(views), decay_km=decay_km)
        probs = np.asarray(p.cell_probs, dtype=np.float64)
        order = np.argsort(-probs)[:max_heat]
        order = order[probs[order] >= heat_min_p]
        cents = predictor.centroids_deg
        heat = [[float(cents[i, 0]), float(cents[i, 1]), float(probs[i])] for i in order]
        topk = [{"lat": float(c["lat"]), "lon": float(c["lon"]), "p": float(c["p"])} for c in p.top_cells[:TOP_K]]
        return GuessResult(float(p.guess[0]), float(p.guess[1]), topk, heat, float(p.expected_score),
                           dict(p.timings_ms), text_summary(p.text))

    return guess


def text_summary(text: dict | None) -> dict | None:
    """What the round table and the match log keep of the text cue: the lines read (view, text, confidence),
    the best place matched and whether the guess snapped to it."""
    if text is None:
        return None
    return {"reads": [[r["view"], r["text"], r["confidence"]] for r in text.get("reads", [])][:20],
            "best": text.get("best"), "snapped": bool(text.get("snapped")), "scripts": text.get("scripts", []),
            "words": sorted(text.get("words", {}))}


def load_guess_fn(run_dir: str | Path, device: str = "auto", guess_mode: str = DEFAULT_GUESS_MODE,
                  text_cue=None):
    """Load a run (``Predictor.load``, warmed up) and return (guess callable, predictor). ``guess_mode``: the
    point played (:mod:`model.guess`): ``expected_score`` (the default: maximises the expected GeoGuessr score
    under the cell distribution; the best mean score for the demo checkpoint, docs/training.md), ``refined``
    (PIGEON's retrieval refinement) or ``head`` (the argmax cell's centroid). ``text_cue``: a
    ``model.text.cue.TextCueConfig`` (the bot config's [text_cue]); when enabled, every captured view is read at
    full resolution and the reads are fused with the image distribution (docs/text_cue.md)."""
    from model.inference import Predictor  # lazy: torch only when the bot really plays

    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file():
        raise FileNotFoundError(f"no trained run at {run_dir} (manifest.json missing); pass --run DIR "
                                "(the shipped demo run is checkpoints/demo; train one with `pigeon train`)")
    predictor = Predictor.load(run_dir, device=device, guess_mode=guess_mode, text_cue=text_cue)
    return predictor_guess_fn(predictor), predictor
