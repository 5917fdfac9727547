"""OCR engines behind one small interface: ``engine.read(image) -> list[TextRead]``.

An engine takes one view as an RGB ``uint8`` array (H, W, 3) at the resolution it was captured (the text cue
wants the full-resolution capture, not the model's 64 px input) and returns the text lines it read, each with
its box and confidence. Plug another engine by implementing ``read`` and registering a factory in ``ENGINES``.

``rapidocr``: PP-OCRv4 detection + recognition (Latin and Chinese characters) run by onnxruntime, from the
``rapidocr-onnxruntime`` 1.4.4 wheel, which ships its ONNX models (nothing is downloaded at run time; later
``rapidocr`` releases fetch their models and are not used). No torch.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class TextRead:
    """One line of text read from a view: ``box`` (4, 2) pixel corners (x, y), ``confidence`` in [0, 1]."""

    text: str
    confidence: float
    box: tuple[tuple[float, float], ...] = ()
    view: int = -1  # index of the view it was read from (set by the caller), -1 = unknown

    def to_dict(self) -> dict:
        return {"text": self.text, "confidence": round(float(self.confidence), 3), "view": self.view,
                "box": [[round(float(x), 1), round(float(y), 1)] for x, y in self.box]}


class OcrEngine(Protocol):
    name: str

    def read(self, image: np.ndarray) -> list[TextRead]:
        """Text lines of one RGB uint8 image (H, W, 3)."""
        ...


class NullEngine:
    """Reads nothing: the text cue then leaves every prediction unchanged."""

    name = "none"

    def read(self, image: np.ndarray) -> list[TextRead]:  # noqa: ARG002
        return []


class RapidOcrEngine:
    """PP-OCRv4 through ``rapidocr_onnxruntime`` (imported on first use).

    ``det_limit_side_len`` is the detector's input size for the image's shorter side. Small, distant signs need
    the upsampling: on 40 locations of a 512 px validation render the town's name was read in 7 at 512, 10 at
    736 and 12 at 832, for a median 0.15, 0.23 and 0.28 s of CPU per view on 2 cores (docs/text_cue.md); 736
    (the library's own default) keeps four views under a second. Signs stand upright, so the angle classifier
    is skipped. ``threads`` caps onnxruntime's intra-op threads (0 = its default).
    """

    name = "rapidocr"

    def __init__(self, det_limit_side_len: int = 736, min_confidence: float = 0.5, threads: int = 0):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:  # pragma: no cover - exercised only where the wheel is missing
            raise RuntimeError("the text cue's OCR engine needs rapidocr-onnxruntime==1.4.4 "
                               "(pip install rapidocr-onnxruntime==1.4.4), or set text_cue.engine = \"none\"") from exc
        kwargs = {"det_limit_side_len": int(det_limit_side_len), "det_limit_type": "min",
                  "text_score": float(min_confidence)}
        if threads > 0:
            kwargs |= {"intra_op_num_threads": int(threads), "inter_op_num_threads": 1}
        self._ocr = RapidOCR(**kwargs)
        self.min_confidence = float(min_confidence)

    def read(self, image: np.ndarray) -> list[TextRead]:
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"OCR needs an RGB uint8 image (H, W, 3), got {img.dtype} {img.shape}")
        # rapidocr expects OpenCV's BGR channel order for arrays
        result, _ = self._ocr(np.ascontiguousarray(img[:, :, ::-1]), use_cls=False)
        reads = []
        for box, text, conf in result or []:
            if float(conf) >= self.min_confidence and str(text).strip():
                reads.append(TextRead(str(text).strip(), float(conf),
                                      tuple((float(x), float(y)) for x, y in box)))
        return reads


ENGINES: dict[str, Callable[..., OcrEngine]] = {"rapidocr": RapidOcrEngine, "none": NullEngine}


def make_engine(name: str, **kwargs) -> OcrEngine:
    """An engine by name (``ENGINES``); unknown names fail with the list of known ones."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown OCR engine {name!r}; known: {', '.join(sorted(ENGINES))}") from None
    return factory(**kwargs) if name != "none" else factory()


def engine_for(cfg, threads: int = 0) -> OcrEngine:
    """The engine a ``model.text.cue.TextCueConfig`` names, with its detector size and confidence floor
    (``threads``: onnxruntime intra-op threads, 0 = its default)."""
    if cfg.engine != "rapidocr":
        return make_engine(cfg.engine)
    return make_engine(cfg.engine, det_limit_side_len=cfg.det_limit_side_len, min_confidence=cfg.min_confidence,
                       threads=threads)

