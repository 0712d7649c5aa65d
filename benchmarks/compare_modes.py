"""Train baseline, separate, joint and end2end through a bundle on one split and score the held-out cases.

    python benchmarks/compare_modes.py                                  # liver3d demo, 8 labelled cases
    python benchmarks/compare_modes.py --dataset_dir /data/Task03_Liver --scale gpu --num_labeled 32 --num_val 8
    python benchmarks/compare_modes.py --bundle skin_lesion2d --dataset_dir ../shared/data/isic2017/train \
        --eval_dataset_dir ../shared/data/isic2017/val --num_labeled 40 --num_val 8

Each mode trains in its own bundle_root (a temporary folder unless --output is given) with the same
seed, split and number of segmenter steps; evaluate.yaml then scores the cases outside the split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUNDLES = Path(__file__).resolve().parent.parent / "bundles"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="liver3d")
    parser.add_argument("--modes", nargs="+", default=["baseline", "separate", "joint", "end2end"])
    parser.add_argument("--dataset_dir", default=None)
    parser.add_argument(
        "--eval_dataset_dir", default=None, help="score these cases instead of the split's held-out ones"
    )
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--num_labeled", type=int, default=8)
    parser.add_argument("--num_val", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()

    configs = BUNDLES / args.bundle / "configs"
    out = Path(args.output or tempfile.mkdtemp(prefix="genseg_modes_"))
    common = [
        f"--scale={args.scale}",
        f"--num_labeled={args.num_labeled}",
        f"--num_val={args.num_val}",
        f"--seed={args.seed}",
    ]
    if args.dataset_dir:
        common.append(f"--dataset_dir={args.dataset_dir}")
    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; runs in {out}")
    rows = []
    for mode in args.modes:
        root = out / mode
        run = [sys.executable, "-m", "monai.bundle", "run", f"--bundle_root={root}", *common]
        start = time.time()
        subprocess.run(
            run + ["--config_file", str(configs / "train.yaml"), f"--mode={mode}"], check=True, capture_output=True
        )
        minutes = (time.time() - start) / 60
        overlay = json.dumps([str(configs / "train.yaml"), str(configs / "evaluate.yaml")])
        scoring = [f"--eval_dataset_dir={args.eval_dataset_dir}"] if args.eval_dataset_dir else []
        subprocess.run(run + ["--config_file", overlay] + scoring, check=True, capture_output=True)
        summary = json.loads((root / "eval" / "metrics.json").read_text())["summary"]
        rows.append((mode, minutes, summary))
    keys = [k for k in rows[0][2] if k.startswith("val_mean_dice_")] + ["hd95_mean"]
    n = rows[0][2]["val_mean_dice_mean"]["n"]
    print(f"\n{args.bundle}: {args.num_labeled} labelled + {args.num_val} validation cases, {n} cases scored")
    print(f"{'mode':<10}{'train min':>10}" + "".join(f"{k.replace('val_mean_', ''):>22}" for k in keys))
    for mode, minutes, summary in rows:
        cells = "".join(f"{summary[k]['mean']:>14.3f} +- {summary[k]['std']:<5.3f}" for k in keys)
        print(f"{mode:<10}{minutes:>10.1f}{cells}")


if __name__ == "__main__":
    main()
