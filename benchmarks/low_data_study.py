"""Does GenSeg beat plain training? Arms x seeds x labelled counts through a bundle, scored on unseen cases.

    python benchmarks/low_data_study.py --bundle hippocampus3d --dataset_dir ../shared/data/hippocampus \
        --counts 8 --num_val 2 --steps 1600 --output study/hippocampus
    python benchmarks/low_data_study.py --bundle skin_lesion2d --dataset_dir ../shared/data/isic2017/train \
        --eval_dataset_dir ../shared/data/isic2017/val --counts 40 --num_val 8 --steps 1200 \
        --set "presets#demo#patch_size=[128,128]" --output study/isic

Every arm sees the same labelled cases for a given count and seed (the bundle's split), takes the same
number of segmenter steps on the same real batch stream, and is scored with its *final* weights (no
model selection on a handful of validation cases) on the cases outside the split, or on
``--eval_dataset_dir`` (another folder of the same task: in or out of domain). The arms:

=================  ======================================================================================
baseline           real pairs only, standard augmentation, trained on all labelled cases
baseline_strong    real pairs only, the generator's mask geometry applied to image and label (paired),
                   trained on all labelled cases
separate           + synthetic pairs from a frozen pix2pix generator (num_val cases held out)
joint              + synthetic pairs, the generator keeps training, no feedback loop
end2end            GenSeg: joint + the feedback loop from the validation cases
=================  ======================================================================================

The baselines push one real batch per step; the generator's arms push it plus as many synthetic pairs.
The *strong baseline* is the better of the two baselines by mean Dice; every arm's paired difference to
it (per seed) is reported with a 95% t-interval over seeds, and so is ``end2end - joint``, the feedback
loop's own value. Runs already finished in ``--output`` are read back, not repeated, so a study can be
stopped and continued. Writes ``runs.csv``, ``summary.json``, ``summary.md`` and, with matplotlib,
``dice_vs_labelled.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

BUNDLES = Path(__file__).resolve().parent.parent / "bundles"
ARMS = {
    "baseline": {"mode": "baseline", "augmentation": "standard", "train_on_val": True},
    "baseline_strong": {"mode": "baseline", "augmentation": "strong", "train_on_val": True},
    "separate": {"mode": "separate"},
    "joint": {"mode": "joint"},
    "end2end": {"mode": "end2end"},
}
BASELINES = ("baseline", "baseline_strong")


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean, standard deviation and the half-width of the two-sided 95% t-interval of the mean."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan"), float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, sd, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def summarise(rows: list[dict]) -> dict:
    """Per labelled count: each arm's Dice (mean, sd over seeds) and paired differences over seeds."""
    by = defaultdict(dict)  # (count) -> {(arm, seed): dice}
    seconds = defaultdict(list)
    for r in rows:
        by[int(r["count"])][(r["arm"], int(r["seed"]))] = float(r["dice"])
        seconds[(int(r["count"]), r["arm"])].append(float(r["train_seconds"]))
    out = {}
    for count, runs in sorted(by.items()):
        arms = sorted({a for a, _ in runs}, key=list(ARMS).index)
        seeds = sorted({s for _, s in runs})
        table = {}
        for arm in arms:
            dice = [runs[(arm, s)] for s in seeds if (arm, s) in runs]
            mean, sd, _ = t_interval(dice)
            table[arm] = {
                "dice_mean": mean,
                "dice_sd": sd,
                "n": len(dice),
                "train_seconds": sum(seconds[(count, arm)]) / len(seconds[(count, arm)]),
            }
        present = [b for b in BASELINES if b in table]
        strong = max(present, key=lambda b: table[b]["dice_mean"]) if present else None
        differences = {}
        pairs = [(arm, strong) for arm in arms if strong and arm != strong] + [("end2end", "joint")]
        for arm, ref in pairs:
            paired = [runs[(arm, s)] - runs[(ref, s)] for s in seeds if (arm, s) in runs and (ref, s) in runs]
            if paired:
                mean, sd, half = t_interval(paired)
                differences[f"{arm} - {ref}"] = {
                    "mean": mean,
                    "sd": sd,
                    "ci95": [mean - half, mean + half],
                    "n": len(paired),
                }
        out[str(count)] = {"arms": table, "strong_baseline": strong, "differences": differences, "seeds": seeds}
    return out


def markdown(summary: dict, header: str) -> str:
    lines = [header, ""]
    for count, s in summary.items():
        lines += [
            f"**{count} labelled cases**, seeds {s['seeds']}; strong baseline: `{s['strong_baseline']}`",
            "",
            "| arm | Dice mean +- sd | train s/run |",
            "|---|---|---|",
        ]
        lines += [
            f"| {arm} | {a['dice_mean']:.3f} +- {a['dice_sd']:.3f} | {a['train_seconds']:.0f} |"
            for arm, a in s["arms"].items()
        ]
        lines += ["", "| paired difference | mean | sd | 95% interval |", "|---|---|---|---|"]
        lines += [
            f"| {k} | {d['mean']:+.3f} | {d['sd']:.3f} | [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |"
            for k, d in s["differences"].items()
        ]
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict, path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return False
    fig, ax = plt.subplots(figsize=(5, 3.5))
    counts = sorted(summary, key=int)
    for arm in ARMS:
        pts = [(int(c), summary[c]["arms"][arm]) for c in counts if arm in summary[c]["arms"]]
        if pts:
            ax.errorbar(
                [p[0] for p in pts],
                [p[1]["dice_mean"] for p in pts],
                yerr=[p[1]["dice_sd"] for p in pts],
                marker="o",
                capsize=3,
                label=arm,
            )
    ax.set_xlabel("labelled cases")
    ax.set_ylabel("mean Dice (unseen cases)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def run_one(args, arm: str, count: int, seed: int, out: Path) -> dict:
    """Train one arm and score its final weights; returns the result row (cached in ``result.json``)."""
    root = out / "runs" / f"n{count}_{arm}_seed{seed}"
    done = root / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    configs = BUNDLES / args.bundle / "configs"
    num_val = args.num_val
    settings = {
        **ARMS[arm],
        "num_labeled": count - num_val,
        "num_val": num_val,
        "seed": seed,
        "scale": args.scale,
        "presets#" + args.scale + "#epoch_length": args.steps // args.epochs,
        "presets#" + args.scale + "#max_epochs": args.epochs,
        "overwrite": True,
        "num_workers": args.num_workers,
    }
    if args.dataset_dir:
        settings["dataset_dir"] = args.dataset_dir
    for item in args.set:
        key, value = item.split("=", 1)
        settings[key] = value
    base = [sys.executable, "-m", "monai.bundle", "run", f"--bundle_root={root}"] + [
        f"--{k}={v}" for k, v in settings.items()
    ]
    root.mkdir(parents=True, exist_ok=True)
    log = open(root / "log.txt", "w")
    start = time.time()
    subprocess.run(
        base + ["--config_file", str(configs / "train.yaml")], check=True, stdout=log, stderr=subprocess.STDOUT
    )
    seconds = time.time() - start
    overlay = json.dumps([str(configs / "train.yaml"), str(configs / "evaluate.yaml")])
    scoring = ["--eval_checkpoint=final"] + (
        [f"--eval_dataset_dir={args.eval_dataset_dir}"] if args.eval_dataset_dir else []
    )
    subprocess.run(base + ["--config_file", overlay] + scoring, check=True, stdout=log, stderr=subprocess.STDOUT)
    summary = json.loads((root / "eval" / "metrics.json").read_text())["summary"]
    genotype = [
        line.split("genotype", 1)[1].strip()
        for line in (root / "log.txt").read_text().splitlines()
        if "GenotypeLogger" in line
    ]
    row = {
        "bundle": args.bundle,
        "count": count,
        "arm": arm,
        "seed": seed,
        "dice": summary["val_mean_dice_mean"]["mean"],
        "hd95": summary.get("hd95_mean", {}).get("mean", float("nan")),
        "n_scored": summary["val_mean_dice_mean"]["n"],
        "train_seconds": round(seconds, 1),
        "steps": args.steps,
        "genotype": genotype[-1] if genotype else "",
    }
    done.write_text(json.dumps(row))
    print(
        f"{arm:>16} n={count} seed={seed}: Dice {row['dice']:.3f}  HD95 {row['hd95']:.2f}  ({seconds:.0f} s)",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="hippocampus3d")
    parser.add_argument("--dataset_dir", default=None, help="labelled cases (default: the bundle's demo data)")
    parser.add_argument("--eval_dataset_dir", default=None, help="score these cases instead of those outside the split")
    parser.add_argument("--counts", type=int, nargs="+", default=[8], help="labelled cases (training + validation)")
    parser.add_argument("--num_val", type=int, default=2, help="of these, validation cases for the generator's arms")
    parser.add_argument(
        "--arms", nargs="+", default=["baseline", "baseline_strong", "joint", "end2end"], choices=list(ARMS)
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1600, help="segmenter steps, the same for every arm")
    parser.add_argument("--epochs", type=int, default=4, help="the steps are split into this many epochs")
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--set", action="append", default=[], help="more bundle settings, KEY=VALUE (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (1 on a CPU; several on a GPU)")
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--output", default="study")
    parser.add_argument(
        "--report_only", action="store_true", help="summarise the runs finished in --output, start none"
    )
    args = parser.parse_args()
    if args.steps % args.epochs:
        parser.error(f"--steps {args.steps} is not a multiple of --epochs {args.epochs}")
    if any(c <= args.num_val for c in args.counts):
        parser.error(f"every count must exceed --num_val {args.num_val}")

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)] + sys.argv)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    machine = f"{platform.machine()}, {device}, torch {torch.__version__}"
    print(f"command: {command}\nmachine: {machine}\nseeds: {args.seeds}", flush=True)
    jobs = [(arm, count, seed) for count in args.counts for seed in args.seeds for arm in args.arms]
    if args.report_only:
        jobs = [j for j in jobs if (out / "runs" / f"n{j[1]}_{j[0]}_seed{j[2]}" / "result.json").exists()]
        if not jobs:
            parser.error(f"no finished runs in {out}")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, args, *job, out) for job in jobs]
        rows = []
        for f in futures:
            try:
                rows.append(f.result())
            except subprocess.CalledProcessError as e:
                print(f"a run failed ({e}); see its log.txt under {out / 'runs'}", flush=True)

    with open(out / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    header = (
        f"### {args.bundle}: {args.steps} segmenter steps per arm, final weights, "
        f"{rows[0]['n_scored']} unseen cases scored\n\n`{command}`\n\nmachine: {machine}"
    )
    (out / "summary.json").write_text(
        json.dumps({"command": command, "machine": machine, "summary": summary}, indent=2)
    )
    text = markdown(summary, header)
    (out / "summary.md").write_text(text)
    plot(summary, out / "dice_vs_labelled.png", f"{args.bundle}, {args.steps} steps")
    print("\n" + text)


if __name__ == "__main__":
    main()
