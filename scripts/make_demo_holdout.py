"""Copy a random sample of a dataset into a small dataset folder (the demo's held-out world).

    python scripts/make_demo_holdout.py data/worlds/holdout512 checkpoints/demo/holdout --n 40 --seed 7 \
        --all-splits --exclude-near data/worlds/demo48k --min-km 10

The demo checkpoint never saw these locations. The shipped sample comes from a 512 px render of a seed the
training never used (seed 7; the bot and the arena show 512 px views, the model resizes them), every location at
least ``--min-km`` from every training location of the world it was trained on (the split rule of docs/world.md).
Without ``--all-splits`` the sample is drawn from SRC's test split, which already obeys that rule.
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
    ap.add_argument("--all-splits", action="store_true", help="sample from every split of SRC (a held-out render)")
    ap.add_argument("--exclude-near", type=Path, help="a dataset whose train split the sample must keep away from")
    ap.add_argument("--min-km", type=float, default=10.0, help="distance kept from --exclude-near's train split")
    args = ap.parse_args()
    ds = load_dataset(args.src)
    test = list(ds.locations) if args.all_splits else ds.split("test")
    if args.exclude_near is not None:
        import numpy as np

        from model.geo.geography import pairwise_haversine_km

        train = load_dataset(args.exclude_near).latlon("train")
        d = pairwise_haversine_km(np.array([[loc.lat, loc.lon] for loc in test]), np.asarray(train)).min(1)
        test = [loc for loc, km in zip(test, d) if km >= args.min_km]
    picked = sorted(random.Random(args.seed).sample(range(len(test)), min(args.n, len(test))))
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in picked:
        loc = test[i]
        rows.append({"id": loc.id, "lat": loc.lat, "lon": loc.lon, **loc.aux, "split": "test"})
        for src in ds.image_paths(loc.id):
            shutil.copyfile(src, args.out / "images" / src.name)
    write_locations_csv(args.out / "locations.csv", rows)
    write_manifest(args.out, name="demo-holdout",
                   source=f"{'all splits' if args.all_splits else 'test split'} of {ds.manifest.get('name')}",
                   views=ds.views, image_size=tuple(ds.manifest.get("image_size") or ()) or None,
                   generator={"from": str(args.src),
                              "from_locations_sha256": file_sha256(ds.manifest, "locations.csv"),
                              "n": len(rows), "seed": args.seed}, timestamp=False)
    print(f"wrote {len(rows)} held-out locations to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
