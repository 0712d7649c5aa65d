#!/usr/bin/env bash
# Two checkouts of monai-genseg, trained and scored on the same split and seeds: the paired difference a
# training change makes. Each run is a bundle's planned default (environment BUNDLE, default hippocampus3d) with
# --time_budget_minutes BUDGET, scored with evaluate.yaml on UNSEEN; rows "arm seed train_s planned_steps dice_mean
# hd95_mean steps_run" go to OUT/rows.txt,
# then the paired summary is printed. One run at a time (two at once spoil each other's plans).
#
#   git worktree add /tmp/before <commit>
#   bash benchmarks/paired_versions.sh /tmp/before . LABELLED UNSEEN 4 "0 1 2" study/paired
#   BUNDLE=skin_lesion2d bash benchmarks/paired_versions.sh /tmp/before . ISIC40 ISIC_VAL 15 "1" study/paired_isic
# (ISIC40: the labelled/ folder of `python benchmarks/vs_nnunet.py --dataset_dir ../shared/data/isic2017/train
# --num_labeled 40 --seed 0 --split_only --output ISIC40SPLIT`; ISIC_VAL: ../shared/data/isic2017/val)
set -euo pipefail
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2"); LABELLED=$(realpath "$3"); UNSEEN=$(realpath "$4")
BUDGET=$5; SEEDS=$6; OUT=$(realpath -m "$7"); BUNDLE=${BUNDLE:-hippocampus3d}
mkdir -p "$OUT"
echo "command: $0 $*"
echo "machine: $(uname -m), $(nproc) cpus, $(python -c 'import torch; print("torch", torch.__version__)'); bundle $BUNDLE; seeds $SEEDS"
for s in $SEEDS; do for arm in before after; do
  if [ $arm = before ]; then REPO=$BEFORE; else REPO=$AFTER; fi
  R=$OUT/${arm}_s$s; rm -rf "$R"; mkdir -p "$R"
  common=(--dataset_dir "$LABELLED" --bundle_root "$R" --seed "$s" --time_budget_minutes "$BUDGET")
  t0=$(date +%s)
  (cd "$REPO" && PYTHONPATH=$REPO python -m monai.bundle run --config_file bundles/$BUNDLE/configs/train.yaml \
    "${common[@]}" > "$R/train.log" 2>&1)
  t1=$(date +%s)
  (cd "$REPO" && PYTHONPATH=$REPO python -m monai.bundle run --config_file \
    "['bundles/$BUNDLE/configs/train.yaml','bundles/$BUNDLE/configs/evaluate.yaml']" \
    "${common[@]}" --eval_dataset_dir "$UNSEEN" > "$R/eval.log" 2>&1)
  python - "$R" "$arm" "$s" "$((t1 - t0))" >> "$OUT/rows.txt" <<'PY'
import json, re, sys
root, arm, seed, seconds = sys.argv[1:]
p = json.load(open(f"{root}/models/plan.json"))["preset"]
s = json.load(open(f"{root}/eval/metrics.json"))["summary"]
log = open(f"{root}/train.log").read()  # versions before the trainer logged its steps: GenotypeLogger's last line
ran = re.findall(r"(\d+) segmenter steps trained", log) or re.findall(r"iteration (\d+) genotype", log)
print(arm, seed, seconds, p["epoch_length"] * p["max_epochs"], round(s["val_mean_dice_mean"]["mean"], 4),
      round(s["hd95_mean"]["mean"], 3), ran[-1] if ran else "?")
PY
done; done
python - "$OUT/rows.txt" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
d = {(r[0], r[1]): r for r in rows}
diffs = [float(d[("after", s)][4]) - float(d[("before", s)][4]) for (arm, s) in d if arm == "after" and ("before", s) in d]
for r in rows:
    print(" ".join(r))
if len(diffs) > 1:
    print(f"Dice after - before: mean {st.mean(diffs):+.4f}, sd {st.stdev(diffs):.4f}, n {len(diffs)}")
PY
