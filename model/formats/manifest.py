"""The one ``manifest.json`` format of every pigeon folder: run, geocells, dataset, retrieval index,
checkpoint.

Shape (written by :func:`write_manifest`)::

    {"format": "pigeon-<kind>", "version": N,
     ...kind-specific fields...,
     "files": {"<relative/posix/path>": {"sha256": "<hex>", "bytes": <size>}, ...}}

The manifest is written last and atomically, so a folder without one is incomplete. :func:`read_manifest`
checks ``format`` and ``version`` and returns the manifest in the shape above; :func:`verify_files` checks
that listed files exist with their recorded size and sha256. Every problem raises :class:`FormatError`
(a ``ValueError``) naming the file and the problem; a missing folder, manifest or listed file raises
:class:`MissingFileError`, which is both a ``FormatError`` and a ``FileNotFoundError``.

Older folders are still read, without being rewritten (the reader normalises them in memory):

* ``schema_version`` instead of ``version`` (run directories, retrieval indexes, training checkpoints);
* bare sha256 strings instead of ``{"sha256", "bytes"}`` (datasets, indexes, checkpoints): the size is then
  unknown and only the sha256 is checked;
* no ``format`` at all, for the kinds that never wrote one (retrieval indexes, training checkpoints).

Standard library only (no numpy, no torch), so any tool can read and check a folder.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

MANIFEST_FILE = "manifest.json"
FORMAT_PREFIX = "pigeon-"
KINDS = ("run", "geocells", "dataset", "index", "checkpoint")
LEGACY_WITHOUT_FORMAT = frozenset({"index", "checkpoint"})  # kinds whose old manifests had no "format"


class FormatError(ValueError):
    """A pigeon folder (run, geocells, dataset, index, checkpoint) is malformed, corrupt or inconsistent."""


class MissingFileError(FormatError, FileNotFoundError):
    """A folder, its manifest or a file its manifest lists does not exist."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_entry(path: str | Path) -> dict[str, Any]:
    """The manifest entry of one file: ``{"sha256", "bytes"}``."""
    path = Path(path)
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def format_name(kind: str) -> str:
    """``"pigeon-<kind>"``, the ``format`` field of a ``kind`` folder."""
    if kind not in KINDS:
        raise ValueError(f"unknown folder kind {kind!r}; expected one of {KINDS}")
    return FORMAT_PREFIX + kind


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (readers never see half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(folder: str | Path, kind: str, version: int, fields: dict[str, Any], files: Iterable[str],
                   *, indent: int = 2, default: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Hash ``files`` (paths relative to ``folder``) and write ``folder/manifest.json`` atomically.

    ``fields`` are the kind-specific top-level keys; ``default`` is passed to ``json.dumps`` (for values such
    as numpy scalars). Returns the manifest written.
    """
    folder = Path(folder)
    entries = {_relpath(name, folder / MANIFEST_FILE): file_entry(folder / name) for name in files}
    own = {k: v for k, v in fields.items() if k not in ("format", "version", "schema_version", "files")}
    manifest = {"format": format_name(kind), "version": int(version), **own, "files": entries}
    atomic_write_text(folder / MANIFEST_FILE, json.dumps(manifest, indent=indent, default=default) + "\n")
    return manifest


def read_manifest(folder: str | Path, kind: str, version: int, *, required: Iterable[str] = (),
                  hint: str = "") -> dict[str, Any]:
    """Read ``folder/manifest.json`` of a ``kind`` folder, check ``format``, ``version`` and ``required``
    keys, and return it in the current shape (legacy shapes normalised in memory; see the module doc).

    ``hint`` (e.g. how to build the folder) is appended to the message when the folder or manifest is missing.
    """
    folder = Path(folder)
    expected = format_name(kind)
    if not folder.is_dir():
        raise MissingFileError(f"{kind} folder {folder} does not exist{hint}")
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise MissingFileError(f"{path} is missing: {folder} is not a complete {expected} folder{hint}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise FormatError(f"{path}: not a JSON object, so not a {expected} manifest")
    got = raw.get("format")
    if got != expected and not (got is None and kind in LEGACY_WITHOUT_FORMAT):
        raise FormatError(f"{path}: 'format' is {got!r}, expected {expected!r} (not a pigeon {kind} folder)")
    found = raw["version"] if "version" in raw else raw.get("schema_version")
    if type(found) is not int or found != version:
        raise FormatError(f"{path}: {expected} version {found!r} is not supported (this pigeon reads version "
                          f"{version})")
    files = raw.get("files", {})
    if not isinstance(files, dict):
        raise FormatError(f"{path}: 'files' must be an object mapping relative paths to sha256 and size")
    entries = {_relpath(name, path): _entry(name, entry, path) for name, entry in files.items()}
    rest = {k: v for k, v in raw.items() if k not in ("format", "version", "schema_version", "files")}
    manifest = {"format": expected, "version": found, **rest, "files": entries}
    missing = [k for k in required if k not in manifest]
    if missing:
        raise FormatError(f"{path}: missing key(s) {', '.join(missing)}")
    return manifest


def verify_files(folder: str | Path, manifest: dict[str, Any], names: Iterable[str] | None = None,
                 *, hint: str = "") -> None:
    """Check that the files the manifest lists (or only ``names``) exist with their recorded size and sha256.

    ``hint`` (e.g. what to do about it) is appended to every message. An entry without ``bytes`` (a legacy
    bare-sha manifest) is checked by sha256 only.
    """
    folder = Path(folder)
    mpath = folder / MANIFEST_FILE
    files = manifest.get("files", {})
    for name in files if names is None else names:
        entry = files.get(name)
        if entry is None:
            raise FormatError(f"{mpath}: 'files' does not list {name}{hint}")
        entry = _entry(name, entry, mpath)
        path = folder / _relpath(name, mpath)
        if not path.is_file():
            raise MissingFileError(f"{folder} is missing {name} (listed in {MANIFEST_FILE}){hint}")
        size, recorded = path.stat().st_size, entry.get("bytes")
        if recorded is not None and size != recorded:
            state = "truncated" if size < recorded else "modified"
            raise FormatError(f"{path} does not match its manifest {mpath}: {size} bytes, the manifest "
                              f"records {recorded} ({state} file){hint}")
        if sha256_file(path) != entry["sha256"]:
            raise FormatError(f"{path}: sha256 does not match its manifest {mpath} "
                              f"(file corrupt or modified){hint}")


def file_sha256(manifest: dict[str, Any], name: str) -> str | None:
    """The recorded sha256 of ``name`` in a manifest of either shape (None when not listed)."""
    entry = manifest.get("files", {}).get(name)
    return entry if isinstance(entry, str) or entry is None else entry.get("sha256")


def _entry(name: str, entry: Any, where: Path) -> dict[str, Any]:
    """A ``files`` entry in the current shape; a legacy bare sha256 string becomes ``{"sha256": s}``."""
    if isinstance(entry, str):
        entry = {"sha256": entry}
    if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
            and (entry.get("bytes") is None or type(entry.get("bytes")) is int)):
        raise FormatError(f"{where}: files[{name!r}] must be a sha256 string or "
                          '{"sha256": ..., "bytes": ...}')
    return dict(entry)


def _relpath(name: Any, where: Path) -> str:
    """``name`` if it is a relative POSIX path inside the folder; FormatError otherwise."""
    p = PurePosixPath(name) if isinstance(name, str) else None
    if p is None or not name or p.is_absolute() or ".." in p.parts or "\\" in name or ":" in name:
        raise FormatError(f"{where}: {name!r} is not a relative path inside the folder")
    return name
