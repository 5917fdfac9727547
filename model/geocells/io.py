"""Reading training points and writing/reading geocell artefacts (CSV + WKT, GeoJSON, manifest.json).

A geocell directory holds::

    geocells.csv      cell_id (= class id = row order), name, country, admin1, size, lat, lon (centroid),
                      polygon (WKT), isolated, isolated_reason
    geocells.geojson  the same cells as a FeatureCollection (for viewing; loaders read the CSV)
    assignments.csv   row (0-based data row of the input CSV), [id], lat, lon, country, cell_id
    manifest.json     format, version, config, input sha256, counts, timings, versions, files (sha256 + bytes)
                      (the shape of :mod:`model.formats.manifest`)
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from model.geocells._geom import polygonal
from model.formats import manifest as mf
from model.formats.manifest import FormatError, sha256_file

FORMAT = "pigeon-geocells"
VERSION = 1
CELL_COLUMNS = ("cell_id", "name", "country", "admin1", "size", "lat", "lon", "polygon", "isolated",
                "isolated_reason")
_MAX_LISTED = 5


@dataclass(frozen=True)
class PointsInput:
    """Training points read from a CSV: lat_deg/lon_deg (N,), their 0-based data rows (N,), optional ids."""

    path: Path
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    rows: np.ndarray
    ids: np.ndarray | None
    total_rows: int
    sha256: str


def read_points_csv(path: str | Path) -> PointsInput:
    """Read columns lat, lon (+ optional id, split: only split == 'train' rows are kept) from a CSV."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"points CSV not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"points CSV {path} is empty (expected a header with lat, lon)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"points CSV {path} is not a readable CSV: {e}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in ("lat", "lon") if c not in df.columns]
    if missing:
        raise ValueError(f"points CSV {path} lacks column(s) {', '.join(missing)} "
                         f"(found: {', '.join(df.columns) or 'none'})")
    total = len(df)
    if "split" in df.columns:
        df = df[df["split"].str.strip() == "train"]
        if df.empty:
            raise ValueError(f"points CSV {path} has a split column but no rows with split == 'train'")
    if df.empty:
        raise ValueError(f"points CSV {path} has no data rows")
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(np.float64)
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(np.float64)
    bad = ~(np.abs(lat) <= 90) | ~(np.abs(lon) <= 180)  # NaN (non-numeric text) is bad as well
    if bad.any():
        idx = np.flatnonzero(bad)
        listed = "; ".join(f"line {int(df.index[i]) + 2}: lat={df['lat'].iloc[i]!r}, lon={df['lon'].iloc[i]!r}"
                           for i in idx[:_MAX_LISTED])
        more = f" and {len(idx) - _MAX_LISTED} more" if len(idx) > _MAX_LISTED else ""
        raise ValueError(f"points CSV {path} has bad coordinates ({listed}{more}); "
                         "lat must be in [-90, 90] and lon in [-180, 180] degrees")
    ids = df["id"].to_numpy(dtype=object) if "id" in df.columns else None
    return PointsInput(path, lat, lon, df.index.to_numpy(np.int64), ids, total, sha256_file(path))


def cells_to_wkt(polygons: list, precision: int, simplify_deg: float = 0.0) -> np.ndarray:
    """(C,) WKT strings of the cell polygons, optionally simplified (topology-preserving) first."""
    geoms = np.asarray(polygons, dtype=object)
    if simplify_deg > 0:
        geoms = shapely.simplify(geoms, simplify_deg, preserve_topology=True)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms[invalid] = [polygonal(g) for g in shapely.make_valid(geoms[invalid])]
    # snap to the printed grid with GEOS' precision reducer, which keeps polygons valid; plain rounding in
    # to_wkt would leave self-intersections and collapsed slivers
    geoms = shapely.set_precision(geoms, 10.0 ** -precision)
    return shapely.to_wkt(geoms, rounding_precision=precision, trim=True)


def _geojson(table: pd.DataFrame, wkt: np.ndarray) -> str:
    geoms = shapely.to_geojson(shapely.from_wkt(wkt))
    props = table.drop(columns=["polygon"], errors="ignore").to_dict(orient="records")
    feats = [f'{{"type":"Feature","id":{i},"properties":{json.dumps(p, default=_plain)},"geometry":{g}}}'
             for i, (p, g) in enumerate(zip(props, geoms))]
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(feats) + "\n]}\n"


def _plain(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot serialise {type(v).__name__}")


def write_cells_dir(out_dir: Path, table: pd.DataFrame, assignments: pd.DataFrame, manifest: dict) -> Path:
    """Write geocells.csv/.geojson, assignments.csv and manifest.json (with file hashes) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = table[list(CELL_COLUMNS)]
    table.to_csv(out_dir / "geocells.csv", index=False)
    (out_dir / "geocells.geojson").write_text(_geojson(table, table["polygon"].to_numpy()), encoding="utf-8")
    assignments.to_csv(out_dir / "assignments.csv", index=False)
    names = ("geocells.csv", "geocells.geojson", "assignments.csv")
    mf.write_manifest(out_dir, "geocells", VERSION, manifest, names, default=_plain)
    return out_dir


def versions() -> dict[str, str]:
    """Library versions that shape the result (recorded in the manifest)."""
    import scipy
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "shapely": shapely.__version__, "geos": ".".join(map(str, shapely.geos_version)),
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_cells_dir(cells_dir: str | Path, verify: bool = True) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Read and validate a geocell directory -> (table, polygons (C,), manifest)."""
    cells_dir = Path(cells_dir)
    man_path, csv_path = cells_dir / "manifest.json", cells_dir / "geocells.csv"
    for p in (man_path, csv_path):
        if not p.is_file():
            raise FileNotFoundError(f"geocell directory {cells_dir} lacks {p.name}; "
                                    "build it with `pigeon geocells build --points CSV --out DIR`")
    manifest = mf.read_manifest(cells_dir, "geocells", VERSION)
    if verify:
        mf.verify_files(cells_dir, manifest, ["geocells.csv"], hint="; rebuild the geocells")
    table = pd.read_csv(csv_path, keep_default_na=False, dtype={"name": str, "country": str, "admin1": str,
                                                                  "isolated_reason": str})
    missing = [c for c in CELL_COLUMNS if c not in table.columns]
    if missing:
        raise FormatError(f"{csv_path} lacks column(s) {', '.join(missing)}")
    n_cells = manifest.get("counts", {}).get("cells")
    if n_cells != len(table) or not np.array_equal(table["cell_id"].to_numpy(), np.arange(len(table))):
        raise FormatError(f"{csv_path} has {len(table)} rows / cell ids out of order; manifest says {n_cells} cells")
    try:
        polygons = shapely.from_wkt(table["polygon"].to_numpy(dtype=object))
    except shapely.errors.GEOSException as e:
        raise FormatError(f"{csv_path}: unreadable polygon WKT: {e}") from None
    return table, polygons, manifest
