"""What is a trained generator's data worth by itself? A fresh segmenter trained on its synthetic pairs only.

    python benchmarks/synthetic_worth.py --bundle skin_lesion2d --runs study/isic/runs/n40_joint_seed0 \
        study/isic/runs/n40_end2end_seed0 --steps 600 --set dataset_dir=../shared/data/isic2017/train \
        --set num_labeled=32 --set num_val=8 --set seed=0 --eval_dataset_dir ../shared/data/isic2017/val

For each run folder (a ``bundle_root`` holding ``models/genseg_checkpoint.pt``), the bundle is parsed
with the given settings (use the run's own: the split decides which masks are augmented), the generator
is restored, and a freshly initialised segmenter of the bundle trains for ``--steps`` steps on
``G(RandMaskAugment(mask))`` pairs made from the training split's masks, never seeing a real image. It is
then scored on real cases (``--eval_dataset_dir``, else the split's validation cases). Comparing the
``joint`` and ``end2end`` generators of the same seed shows whether the feedback loop made the data
itself more useful.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

BUNDLES = Path(__file__).resolve().parent.parent / "bundles"


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def worth(bundle: str, run: Path, steps: int, settings: dict, eval_dataset_dir: str | None, seed: int) -> float:
    """Mean Dice on real cases of a segmenter trained only on ``run``'s generator's synthetic pairs."""
    from monai.bundle import ConfigParser
    from monai.utils import set_determinism

    from monai_genseg.networks import one_hot_mask

    configs = BUNDLES / bundle / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "train.yaml"), str(configs / "evaluate.yaml")])
    parser.update({**settings, "bundle_root": str(run), "num_workers": 0})
    if eval_dataset_dir:
        parser["eval_dataset_dir"] = eval_dataset_dir
    else:
        parser["validate#dataset#data"] = "$@split['val']"
    parser["validate#handlers"] = []  # score the network trained here, write nothing into the run
    set_determinism(seed=seed)
    device = parser.get_parsed_content("device")
    generator = parser.get_parsed_content("generator_net")
    checkpoint = torch.load(run / "models" / "genseg_checkpoint.pt", map_location=device, weights_only=True)
    generator.load_state_dict(checkpoint["generator"])
    generator.eval()
    network, optimizer, loss_fn = (parser.get_parsed_content(k) for k in ("network", "optimizer", "loss"))
    augment = parser.get_parsed_content("train#mask_augment")
    augment.set_random_state(seed=seed)
    loader = parser.get_parsed_content("train#dataloader")
    num_classes = parser.get_parsed_content("num_classes")
    step = 0
    while step < steps:
        for batch in loader:
            masks = augment(batch["label"].to(device))
            with torch.no_grad():
                images = generator(one_hot_mask(masks, num_classes).to(device))
            network.train()
            optimizer.zero_grad(set_to_none=True)
            loss_fn(network(images), masks).backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    evaluator = parser.get_parsed_content("validate#evaluator")
    evaluator.run()
    return float(evaluator.state.metrics["val_mean_dice"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--runs", nargs="+", required=True, help="bundle_root folders of trained GenSeg runs")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--set", action="append", default=[], help="the runs' bundle settings, KEY=VALUE (repeatable)")
    parser.add_argument("--eval_dataset_dir", default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh segmenter and the mask augmentation")
    args = parser.parse_args()
    settings = {k: _value(v) for k, v in (item.split("=", 1) for item in args.set)}
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    print("command:", " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)] + sys.argv))
    print(
        f"machine: {platform.machine()}, {device}, torch {torch.__version__}; fresh segmenter seed {args.seed}",
        flush=True,
    )
    for run in args.runs:
        start = time.time()
        dice = worth(args.bundle, Path(run), args.steps, settings, args.eval_dataset_dir, args.seed)
        print(
            f"{run}: synthetic-only segmenter, {args.steps} steps: Dice {dice:.3f} on real cases "
            f"({time.time() - start:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
