"""Copy a random sample of a dataset's test split into a small dataset folder (the demo's held-out world).

    python scripts/make_demo_holdout.py data/worlds/demo checkpoints/demo/holdout --n 40 --seed 7

The demo checkpoint never saw these locations: they come from the test split of the world it was trained on,
whose held-out locations are at least 10 km from every training location (docs/world.md).
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.formats.dataset import load_dataset, write_locations_csv, write_manifest  # noqa: E402
from model.formats.manifest import file_sha256  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    ds = load_dataset(args.src)
    test = ds.split("test")
    picked = sorted(random.Random(args.seed).sample(range(len(test)), min(args.n, len(test))))
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in picked:
        loc = test[i]
        rows.append({"id": loc.id, "lat": loc.lat, "lon": loc.lon, "split": "test", **loc.aux})
        for src in ds.image_paths(loc.id):
            shutil.copyfile(src, args.out / "images" / src.name)
    write_locations_csv(args.out / "locations.csv", rows)
    write_manifest(args.out, name="demo-holdout", source=f"test split of {ds.manifest.get('name')}",
                   views=ds.views, image_size=tuple(ds.manifest.get("image_size") or ()) or None,
                   generator={"from": str(args.src),
                              "from_locations_sha256": file_sha256(ds.manifest, "locations.csv"),
                              "n": len(rows), "seed": args.seed}, timestamp=False)
    print(f"wrote {len(rows)} held-out locations to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
