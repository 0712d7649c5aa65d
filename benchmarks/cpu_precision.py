"""A planned training step in float32 and under bfloat16 autocast, 16 and 32 wide: what the plan chooses from.

    python benchmarks/cpu_precision.py                 # the hippocampus and ISIC plans' networks, 5 timed steps
    python benchmarks/cpu_precision.py --steps 10 --cases hippocampus3d

The plan (``monai_genseg/bundle/plan.py``) trains in bfloat16 on a CPU only where a step measures at most
``CPU_BF16_GAIN`` of the float32 step (cores with AMX or AVX512-BF16; elsewhere bfloat16 is emulated and
slower), and 32 wide (nnU-Net's widths) only where that leaves ``FEW_STEPS`` steps in the budget. The step is
:func:`~monai_genseg.bundle.plan.measure_step_seconds`, the one the plan times.
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import replace

import torch

from monai_genseg.bundle import get_recipe
from monai_genseg.bundle.plan import CPU_FALLBACK_WIDTH, _widths, measure_step_seconds

# bundle: (patch, patches or images per step, levels, input channels, classes) as the plan sizes them for
# 8 MSD hippocampus cases and 40 ISIC 2017 images on a CPU
CASES = {
    "hippocampus3d": ((40, 56, 40), 2, 4, 1, 3),
    "skin_lesion2d": ((256, 192), 8, 6, 3, 2),
}


def cpu_flags() -> str:
    """The CPU's bfloat16-relevant features (Linux), which decide whether bfloat16 is native."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags) or "none of them"


def measure(cases: dict, steps: int) -> list[tuple[str, int, float, float]]:
    """``(case, first width, float32 s, bfloat16 s)`` for each case, 16 and 32 wide."""
    rows = []
    for name, (patch, batch, levels, in_channels, classes) in cases.items():
        d = len(patch)
        demo = get_recipe(name).presets["demo"]
        for base in (CPU_FALLBACK_WIDTH, 2 * CPU_FALLBACK_WIDTH):
            preset = replace(
                demo,
                patch_size=tuple(patch),
                segmenter_channels=_widths(base, levels, d),
                samples_per_volume=batch if d == 3 else None,
                batch_size=batch if d == 2 else None,
            )
            single, half = (
                measure_step_seconds(d, in_channels, classes, preset, torch.device("cpu"), bf16=b, steps=steps)
                for b in (False, True)
            )
            rows.append((name, base, single, half))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (after one warm-up)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    print(" ".join(["command: python benchmarks/cpu_precision.py", *(argv if argv is not None else sys.argv[1:])]))
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, CPU flags: {cpu_flags()}; "
        f"torch {torch.__version__}; seed {args.seed}"
    )
    print("| network | float32 step | bfloat16 step | bfloat16 / float32 |\n|---|---|---|---|")
    for name, base, single, half in measure({k: CASES[k] for k in args.cases}, args.steps):
        print(f"| {name}, {base}-wide | {single:.3f} s | {half:.3f} s | {half / single:.2f} |")


if __name__ == "__main__":
    main()
