#!/usr/bin/env bash
# Rebuild the shipped demo checkpoint `checkpoints/demo/` from nothing, seeded (at most 60 min on 2 CPU cores):
# the synthetic world, PIGEON training (configs/demo.toml; it also writes the retrieval index), the test-split report with the
# ablation table, then the export (run files without training state) and the 40-location held-out sample the
# demo plays. Run from the project root after `make setup`.
set -euo pipefail
PY=${PY:-.venv/bin/python}
WORLD=${WORLD:-data/worlds/demo}
RUN=${RUN:-runs/demo}
OUT=${OUT:-checkpoints/demo}
[ -f "$WORLD/manifest.json" ] || $PY -m pigeon world render --seed 1 --locations 12000 --size 128 --out "$WORLD" \
    --set split.test_fraction=0.2 --set split.val_fraction=0.08
start=$(date +%s)
$PY -m pigeon train --config configs/demo.toml --data "$WORLD" --out "$RUN"
echo "make_demo_checkpoint: pigeon train took $(( $(date +%s) - start )) s"
$PY -m pigeon eval --run "$RUN" --data "$WORLD" --out "$RUN-report" --split test --ablation
echo "make_demo_checkpoint: train + eval took $(( $(date +%s) - start )) s"
rm -rf "$OUT" && mkdir -p "$OUT"
cp -r "$RUN"/{config.toml,model.safetensors,manifest.json,geocells,index} "$OUT"/
cp "$RUN-report/metrics.json" "$OUT/metrics-test.json"
$PY scripts/make_demo_holdout.py "$WORLD" "$OUT/holdout" --n 40 --seed 7
du -sh "$OUT"
