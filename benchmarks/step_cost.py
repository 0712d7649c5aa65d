"""Seconds per iteration and peak memory of each GenSeg mode, as ratios to plain (baseline) training.

    python benchmarks/step_cost.py                 # 2D 128^2 and 3D 64^3, 24 timed iterations each
    python benchmarks/step_cost.py --dims 3 --iterations 8 --configs baseline joint/4 end2end/4/8

Every configuration trains the same segmenter on the same real batch; each runs in its own
process so peak memory is its own (CUDA: max allocated; CPU: peak RSS above the level before training).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

# name: mode [/ generator_update_interval / arch_update_interval]; exact Adam-consistent hypergradient unless -fd
CONFIGS = {
    "baseline": dict(mode="baseline"),
    "separate": dict(mode="separate"),
    "joint/1": dict(mode="joint", generator_update_interval=1),
    "joint/2": dict(mode="joint", generator_update_interval=2),
    "joint/4": dict(mode="joint", generator_update_interval=4),
    "end2end/1/1": dict(mode="end2end", generator_update_interval=1, arch_update_interval=1),
    "end2end/2/2": dict(mode="end2end", generator_update_interval=2, arch_update_interval=2),
    "end2end/2/4": dict(mode="end2end", generator_update_interval=2, arch_update_interval=4),
    "end2end/2/8": dict(mode="end2end", generator_update_interval=2, arch_update_interval=8),
    "end2end/4/4": dict(mode="end2end", generator_update_interval=4, arch_update_interval=4),
    "end2end/4/8": dict(mode="end2end", generator_update_interval=4, arch_update_interval=8),
    "end2end-fd/2/4": dict(
        mode="end2end", hypergradient="finite_difference", generator_update_interval=2, arch_update_interval=4
    ),
}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_trainer(dims: int, size: int, device: str = "cpu", act: str = "PRELU", epoch_length: int = 1, **config):
    """The benchmark problem: UNet(16,32,64,128) segmenter, 2 real (+2 synthetic) items, 4 validation items.

    ``config``: ``mode`` and any field of ``GenerationSettings`` or ``FeedbackSettings``, given flat.
    """
    import dataclasses

    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import PatchDiscriminator, UNet

    from monai_genseg.engines import FeedbackSettings, GenerationSettings, GenSegTrainer
    from monai_genseg.networks import MaskToImageGenerator
    from monai_genseg.transforms import RandMaskAugment

    torch.manual_seed(0)
    shape = [size] * dims
    label = torch.zeros(2, 1, *shape)
    label[(slice(None), slice(None)) + tuple(slice(size // 4, 3 * size // 4) for _ in shape)] = 1
    batch = {"image": 0.2 + 0.6 * label + 0.05 * torch.randn_like(label), "label": label}
    val = {k: torch.cat([v, v.flip(2)]) for k, v in batch.items()}

    seg = UNet(dims, 1, 2, (16, 32, 64, 128), (2, 2, 2), num_res_units=1, norm="instance", act=act).to(device)
    gen = MaskToImageGenerator(dims, 2, 1, channels=(16, 32, 64)).to(device)
    disc = PatchDiscriminator(num_layers_d=3, spatial_dims=dims, channels=16, in_channels=3, norm="INSTANCE").to(device)
    augment = RandMaskAugment(dims)
    augment.set_random_state(0)
    settings = {
        kind: kind(**{f.name: config.pop(f.name) for f in dataclasses.fields(kind) if f.name in config})
        for kind in (GenerationSettings, FeedbackSettings)
    }
    return GenSegTrainer(
        device=device,
        max_epochs=1,
        epoch_length=epoch_length,
        train_data_loader=[batch],
        network=seg,
        optimizer=torch.optim.Adam(seg.parameters(), 1e-3),
        loss_function=DiceCELoss(to_onehot_y=True, softmax=True),
        generator=gen,
        generator_optimizer=torch.optim.Adam(gen.weight_parameters(), 2e-4),
        discriminator=disc,
        discriminator_optimizer=torch.optim.Adam(disc.parameters(), 2e-4),
        arch_optimizer=torch.optim.Adam(gen.arch_parameters(), 3e-3),
        val_data_loader=[val],
        mask_augment=augment,
        num_classes=2,
        generation=settings[GenerationSettings],
        feedback=settings[FeedbackSettings],
        **config,
    )


def measure(name: str, dims: int, size: int, iterations: int, device: str) -> dict:
    """Run one configuration in this process and return its timings."""
    import torch
    from ignite.engine import Events

    warm = 3
    trainer = build_trainer(dims, size, device, epoch_length=warm + iterations, **CONFIGS[name])
    times: list[float] = []
    start = {}
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: start.update(t=time.perf_counter()))

    def stop(engine):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if engine.state.iteration > warm:
            times.append(time.perf_counter() - start["t"])

    trainer.add_event_handler(Events.ITERATION_COMPLETED, stop)
    rss0 = _rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    trainer.run()
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    return {"name": name, "dims": dims, "seconds": statistics.mean(times), "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--iterations", type=int, default=24, help="timed iterations, a multiple of every interval")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--device", default=None)
    parser.add_argument("--child", nargs=2, metavar=("NAME", "DIMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    sizes = {2: 128, 3: 64}
    if args.child:
        name, dims = args.child[0], int(args.child[1])
        print(json.dumps(measure(name, dims, sizes[dims], args.iterations, device)))
        return

    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv))
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, gpu: {gpu}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}"
    )
    print("segmenter UNet(16,32,64,128) on 2 real (+2 synthetic) items, generator (16,32,64), 4 validation items")
    for dims in args.dims:
        rows = []
        for name in args.configs:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                name,
                str(dims),
                "--iterations",
                str(args.iterations),
                "--device",
                device,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", check=True)
            out = proc.stdout.strip().splitlines()[-1]
            rows.append(json.loads(out))
        base = next((r for r in rows if r["name"] == "baseline"), None)
        if base is None:
            raise SystemExit("ratios need the baseline configuration in --configs")
        print(f"\n{dims}D, {sizes[dims]}^{dims} images: ratio to baseline (mean s/iteration, peak memory MB)")
        for r in rows:
            time_ratio, memory_ratio = r["seconds"] / base["seconds"], r["peak_mb"] / max(base["peak_mb"], 1e-6)
            print(
                f"  {r['name']:<16} time x{time_ratio:5.2f}   memory x{memory_ratio:5.2f}"
                f"   ({r['seconds']:.3f} s, {r['peak_mb']:.0f} MB)"
            )


if __name__ == "__main__":
    main()
