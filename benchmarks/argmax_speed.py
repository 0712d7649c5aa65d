"""Seconds to turn a CT volume's class probabilities into a label map: MONAI's ``AsDiscrete(argmax=True)``
against :class:`monai_genseg.transforms.ArgMax`, which inference uses (same labels, checked here).

    python benchmarks/argmax_speed.py                        # (3, 512, 512, 130), 5 repeats
    python benchmarks/argmax_speed.py --shape 2 256 256 --repeats 3

The probabilities are timed in two layouts: contiguous, as the network and a resampling make them, and
as a transposed view of that (not contiguous), as an inverse reorientation that swaps axes leaves them.
Median of the repeats; ratios from the same run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch
from monai.data import MetaTensor
from monai.transforms import AsDiscrete

from monai_genseg.transforms import ArgMax


def seconds(fn, x: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[3, 512, 512, 130], help="channels, then spatial")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("command: python benchmarks/argmax_speed.py " + " ".join(sys.argv[1:] if argv is None else argv))
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; seed {args.seed}"
    )
    torch.manual_seed(args.seed)
    probs = torch.softmax(torch.randn(args.shape), dim=0)
    # the same values with the first and last spatial axes' strides swapped: not contiguous
    transposed = probs.transpose(1, -1).contiguous().transpose(1, -1)
    ratios = {}
    for layout, x in [("contiguous", probs), ("transposed view", transposed)]:
        x = MetaTensor(x)
        monai_s, expected = seconds(AsDiscrete(argmax=True), x, args.repeats)
        ours_s, labels = seconds(ArgMax(), x, args.repeats)
        if not torch.equal(expected.as_tensor(), labels.as_tensor()):
            raise SystemExit(f"{layout}: ArgMax and AsDiscrete(argmax=True) disagree")
        ratios[layout] = monai_s / ours_s
        print(f"{tuple(args.shape)} {layout}: AsDiscrete {monai_s:.2f} s, ArgMax {ours_s:.2f} s, {ratios[layout]:.1f}x")
    return ratios


if __name__ == "__main__":
    main()
