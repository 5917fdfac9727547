#!/usr/bin/env bash
# Rebuild the shipped demo checkpoint `checkpoints/demo/` from nothing, seeded (the previous tower's rebuilds gave
# the same weights, geocells and index tensor for tensor; 66.8 minutes measured on 2 CPU cores for this one, in a
# slow phase of the host, where the same tower with 12 epochs took 53.1 in a faster one; docs/training.md):
# the synthetic world, PIGEON training (configs/demo.toml; it also writes the retrieval index), the test-split report with the
# ablation table, then the export (run files without training state) and the 40-location held-out sample the
# demo plays (512 px, from a seed never trained on). Run from the project root after `make setup`.
set -euo pipefail
PY=${PY:-.venv/bin/python}
WORLD=${WORLD:-data/worlds/demo48k}
RUN=${RUN:-runs/demo}
OUT=${OUT:-checkpoints/demo}
t0=$(date +%s)  # the whole build, world render included, is timed: the target is an hour on 2 cores
[ -f "$WORLD/manifest.json" ] || $PY -m pigeon world render --seed 1 --locations 48000 --size 128 --out "$WORLD" \
    --set split.test_fraction=0.2 --set split.val_fraction=0.08
start=$(date +%s)
echo "make_demo_checkpoint: world render took $(( start - t0 )) s"
# --no-eval: the next command evaluates the same split (with the ablation); the train's own eval would repeat it
# TRAIN_ARGS: extra `pigeon train` arguments, e.g. "--set backbone.name=tiny-resnet-1conv" (docs/training.md)
# shellcheck disable=SC2086
$PY -m pigeon train --config configs/demo.toml --data "$WORLD" --out "$RUN" --no-eval ${TRAIN_ARGS:-}
echo "make_demo_checkpoint: pigeon train took $(( $(date +%s) - start )) s"
$PY -m pigeon eval --run "$RUN" --data "$WORLD" --out "$RUN-report" --split test --ablation
echo "make_demo_checkpoint: train + eval took $(( $(date +%s) - start )) s"
rm -rf "$OUT" && mkdir -p "$OUT"
cp -r "$RUN"/{config.toml,model.safetensors,manifest.json,geocells,index} "$OUT"/
cp "$RUN-report/metrics.json" "$OUT/metrics-test.json"
# the rounds `make demo` plays: a 512 px render of seed 7 (never trained on), >= 10 km from every training location
HOLD=${HOLD:-data/worlds/holdout512}
[ -f "$HOLD/manifest.json" ] || $PY -m pigeon world render --seed 7 --locations 120 --size 512 --out "$HOLD"
$PY scripts/make_demo_holdout.py "$HOLD" "$OUT/holdout" --n 40 --seed 7 --all-splits --exclude-near "$WORLD" --min-km 10
du -sh "$OUT"
echo "make_demo_checkpoint: whole build took $(( $(date +%s) - t0 )) s"
