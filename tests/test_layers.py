"""The dependency direction is part of the design (docs/architecture.md):

    pigeon/ (every CLI verb)
       |-> train/  -> model/
       |-> bot/    -> model/ (heavy parts lazily)
       |-> world/  -> model.formats, model.geo (+ model.config, model.paths)
       |-> arena/  -> model.formats, model.geo (+ model.config, model.paths)
    model/ imports none of the others; only model/network.py imports open_clip.

world/ and arena/ are rooms of their own: the renderer writes dataset folders, the arena serves them, and the bot
talks to the arena over HTTP only; none of the three imports another.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "world", "arena", "train", "bot", "pigeon")
MAY_IMPORT = {  # first-party packages each package may import (besides itself)
    "model": set(),
    "world": {"model"},
    "arena": {"model"},
    "train": {"model"},
    "bot": {"model"},
    "pigeon": {"model", "world", "arena", "train", "bot"},
}
# world/ and arena/ see only model's folder formats, geography, config loader, default paths and the worker-process
# rule (model.workers: standard library only)
DATA_ONLY_MODEL = ("model.formats", "model.geo", "model.config", "model.paths", "model.workers")
# bot may use the torch-free model modules at import time; everything else from model only inside functions
# model.text: the text cue's config and fusion (numpy only; the OCR engine is imported on first use, see
# tests/test_text_cue.py::test_text_cue_imports_no_ocr_engine_or_torch)
BOT_TOPLEVEL_MODEL_OK = ("model.geo", "model.formats", "model.config", "model.paths", "model.views",
                         "model.guess", "model.text")


def _sources(pkg: str):
    return sorted((ROOT / pkg).rglob("*.py"))


def _imports(path: Path, toplevel_only: bool = False):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if toplevel_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for a in node.names:  # `from model import network` names the module model.network
                yield f"{node.module}.{a.name}"


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_packages_import_only_allowed_layers():
    bad = []
    for pkg in PACKAGES:
        for path in _sources(pkg):
            for name in _imports(path):
                top = name.split(".")[0]
                if top in PACKAGES and top != pkg and top not in MAY_IMPORT[pkg]:
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_world_and_arena_use_only_model_formats_and_geography():
    bad = []
    for pkg in ("world", "arena"):
        for path in _sources(pkg):
            for name in _imports(path):
                if name.split(".")[0] == "model" and name != "model" and not _under(name, DATA_ONLY_MODEL):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_only_model_network_imports_open_clip():
    bad = []
    for pkg in (*PACKAGES, "benchmarks", "scripts"):
        for path in _sources(pkg):
            if path == ROOT / "model" / "network.py":
                continue
            for name in _imports(path):
                if name.split(".")[0] == "open_clip" or name in ("model._tvshim",):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_bot_imports_heavy_model_modules_lazily():
    bad = []
    for path in _sources("bot"):
        for n in _imports(path, toplevel_only=True):
            if n.split(".")[0] in {"torch", "open_clip", "faiss"} or (
                    n.startswith("model.") and not _under(n, BOT_TOPLEVEL_MODEL_OK)):
                bad.append(f"{path.relative_to(ROOT)}: top-level import of {n}")
    assert not bad, "\n".join(bad)


def test_model_core_does_not_pull_browser_or_torch():
    code = ("import sys, model.geo.geography, model.geo.geodata, model.config, model.paths, model.formats.dataset;"
            "import model.views, model.guess, model.device, model.index;"
            "bad=[m for m in ('playwright','torch','fastapi') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_world_and_arena_import_without_torch():
    code = ("import sys, world.build, world.render, arena.app;"
            "bad=[m for m in ('torch','open_clip','playwright') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
