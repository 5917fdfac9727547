"""Display formats shared by every layer that shows figures: the CLI tables (``pigeon/cli/_render.py``), the
eval report (``train/report.py``) and the arena's match statistics (``arena/matchstats.py``). No heavy imports at
module level: matplotlib loads on the first plot."""
from __future__ import annotations

import base64
import io
from typing import Any


def format_cell(v: Any) -> str:
    """``None`` -> an en dash, floats with one decimal and thousands separators, ints with separators."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display; the reports are files and web pages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_base64(fig, dpi: int) -> str:
    """The figure as base64 PNG text (for a data URI), closing it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()
