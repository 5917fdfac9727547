"""The dependency direction is part of the design: train -> model, bot -> model (lazily), model -> neither."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "model": {"train", "bot", "pigeon"},
    "train": {"bot", "pigeon"},
    "bot": {"train", "pigeon"},
}
# bot may use the torch-free model modules at import time; everything else from model only inside functions
BOT_TOPLEVEL_MODEL_OK = {"model", "model.geo.geography", "model.formats.dataset", "model.config"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node, node.module


def test_packages_import_only_allowed_layers():
    bad = []
    for pkg, forbidden in FORBIDDEN.items():
        for path in (ROOT / pkg).rglob("*.py"):
            for _, name in _imports(path):
                if name.split(".")[0] in forbidden:
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_bot_imports_heavy_model_modules_lazily():
    bad = []
    for path in (ROOT / "bot").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in {"torch", "open_clip", "faiss"} or (
                        n.startswith("model") and n not in BOT_TOPLEVEL_MODEL_OK):
                    bad.append(f"{path.relative_to(ROOT)}: top-level import of {n}")
    assert not bad, "\n".join(bad)


def test_model_core_does_not_pull_browser_or_torch():
    code = ("import sys, model.geo.geography, model.config, model.formats.dataset;"
            "bad=[m for m in ('playwright','torch','fastapi') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
