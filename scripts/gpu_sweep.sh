#!/usr/bin/env bash
# Sweep cpu-small variants on a lent GPU (same code as the CPU), 3000 steps each,
# all at once; prints each variant's test SIDE/MAD beside the flat-depth baseline.
# Usage (on the device machine): bash scripts/gpu_sweep.sh   (writes under $OUT)
set -u
OUT=${OUT:-/tmp/sweep}
mkdir -p "$OUT"
base='preset: cpu-small
num_epochs: 30
log_every: 10
threads: 1
checkpoint_every: 500'
declare -A variants=(
  [base]=""
  [lr1e-4]="lr: 0.0001"
  [lr2e-4]="lr: 0.0002"
  [sm0.5]="lam_depth_sm: 0.5"
  [sm0]="lam_depth_sm: 0.0"
  [yaw35]="builtin_max_yaw: 35.0"
  [batch32]="batch_size: 32"
  [nf32]="nf: 32
zdim: 128
conf_nf: 32
conf_zdim: 64
enc_nf: 32"
  [clipnorm]="clip: norm"
  [rot30]="xyz_rotation_range: 30.0"
  [noconf]="use_conf_map: false"
  [nf32lr2e-4]="nf: 32
zdim: 128
conf_nf: 32
conf_zdim: 64
enc_nf: 32
lr: 0.0002"
)
for name in "${!variants[@]}"; do
  mkdir -p "$OUT/$name"
  printf '%s\n%s\n' "$base" "${variants[$name]}" > "$OUT/$name/cell.yaml"
  timeout -s TERM 360 python -m model.train --config "$OUT/$name/cell.yaml" --out "$OUT/$name/run" > "$OUT/$name/log.txt" 2>&1 &
  sleep 2
done
wait
for name in "${!variants[@]}"; do
  if [ ! -f "$OUT/$name/run/eval.json" ]; then python -m model.evaluate "$OUT/$name/run" > /dev/null 2>&1; fi
  python - "$OUT/$name" <<'PY'
import json, sys, os
d = sys.argv[1]
e = json.load(open(os.path.join(d, "run", "eval.json")))
last = [json.loads(l) for l in open(os.path.join(d, "run", "train.jsonl"))][-1]
print("%-12s iter %5d  SIDE %.3f (flat %.3f)  MAD %.1f (flat %.1f)  unscored %s" % (
    os.path.basename(d), last["iter"], e["side_mean"] * 100, e["flat_side_mean"] * 100,
    e["mad_mean"], e["flat_mad_mean"], e.get("n_unscored")))
PY
  rm -rf "$OUT/$name/run/checkpoints"
done
rm -rf "$OUT/.data" "$OUT"/*/.data
