"""Two evaluations of the same cases, paired by case: B minus A, with a bootstrap 95% interval.

    python benchmarks/paired_cases.py A/eval/metrics_per_case.csv B/eval/metrics_per_case.csv

Each file is a ``metrics_per_case.csv`` (``evaluate.yaml`` writes one; ``vs_nnunet.py`` writes nnU-Net's in the
same columns). Pairing by case removes what the cases themselves contribute, so the difference between two
models on the same images is measured far more tightly than by comparing their means. The interval resamples
the cases (2000 times, ``random.Random(seed)``): it says how much the difference depends on which cases were
scored, not how much another training run would move it; compare several seeds for that. Every "paired by
case" interval in ``benchmarks/vs_nnunet.md`` since 2026-11-29 was computed this way.

Files that score different cases are refused: two folders can hold images of the same name (ISIC's
``val/0001.jpg`` and ``train/0001.jpg``), and pairing them would compare unrelated images.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from pathlib import Path


def load(path: str | Path, metric: str) -> dict[str, float]:
    """``metric`` per case of a ``metrics_per_case.csv``; NaN where a case has none (an empty reference)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and metric not in rows[0]:
        raise SystemExit(f"{path}: no column {metric!r} (it has {', '.join(rows[0])})")
    values = {}
    for row in rows:
        text = row[metric]
        values[row["case"]] = float(text) if text not in ("", "nan") else math.nan
    return values


def paired(a: dict[str, float], b: dict[str, float], resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """The mean of ``b - a`` over cases finite in both, and its 2.5 and 97.5 bootstrap percentiles."""
    keys = sorted(k for k in a if math.isfinite(a[k]) and math.isfinite(b[k]))
    if not keys:
        raise SystemExit("no case has a finite value in both files")
    diffs = [b[k] - a[k] for k in keys]
    rng = random.Random(seed)
    boots = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(resamples))
    return {
        "n": len(keys),
        "mean_a": sum(a[k] for k in keys) / len(keys),
        "mean_b": sum(b[k] for k in keys) / len(keys),
        "difference": sum(diffs) / len(diffs),
        "low": boots[int(0.025 * resamples)],
        "high": boots[int(0.975 * resamples) - 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the reference's metrics_per_case.csv")
    parser.add_argument("b", help="the other's metrics_per_case.csv, scored on the same cases")
    parser.add_argument("--metric", default="val_mean_dice_mean")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--failure_below", type=float, default=0.5, help="count cases under this value as failures")
    args = parser.parse_args()
    a, b = load(args.a, args.metric), load(args.b, args.metric)
    if set(a) != set(b):
        only_a, only_b = len(set(a) - set(b)), len(set(b) - set(a))
        raise SystemExit(f"{args.a} and {args.b} score different cases ({only_a} only in A, {only_b} only in B)")
    r = paired(a, b, args.resamples, args.seed)
    fail_a, fail_b = (sum(v < args.failure_below for v in x.values()) for x in (a, b))
    print(f"command: paired_cases.py {args.a} {args.b} --metric {args.metric} --seed {args.seed}")
    print(
        f"n {r['n']}: A {r['mean_a']:.4f}, B {r['mean_b']:.4f}, B - A {r['difference']:+.4f} "
        f"[{r['low']:+.4f}, {r['high']:+.4f}] (95%, {args.resamples} bootstrap resamples of the cases); "
        f"cases under {args.failure_below}: A {fail_a}, B {fail_b}"
    )


if __name__ == "__main__":
    main()
