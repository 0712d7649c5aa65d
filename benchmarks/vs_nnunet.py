"""monai-genseg's planned default against nnU-Net v2 on the same few labelled cases, scored on the rest.

    python benchmarks/vs_nnunet.py --dataset_dir ../shared/data/hippocampus --num_labeled 8 --seed 0 \
        --output study/vs_nnunet --nnunet_bin /opt/nnunet/bin --nnunet_trainer nnUNetTrainer_10epochs

Picks ``num_labeled`` cases of a dataset folder (any layout ``--dataset_dir`` takes) with ``seed`` and writes
them (symlinks) to ``OUTPUT/labelled``; every other case goes to ``OUTPUT/unseen``. ``--split_only`` stops
there: that is how the ISIC 40 of ``vs_nnunet.md`` is made (``--dataset_dir ../shared/data/isic2017/train
--num_labeled 40 --seed 0``). Then:

1. **monai-genseg**: ``train.yaml`` with only ``--dataset_dir OUTPUT/labelled`` (the plan, its time
   budget, ``--mode auto``), then ``evaluate.yaml --eval_dataset_dir OUTPUT/unseen``.
2. **nnU-Net v2** (skipped without ``--nnunet_bin``): ``nnUNetv2_plan_and_preprocess``, ``nnUNetv2_train``
   on fold ``all`` (5 folds do not exist at 8 cases) with ``-device cpu`` unless CUDA is there, and
   ``nnUNetv2_predict`` on the unseen images; its predictions are scored by the same MONAI metrics.

Both tools' mean Dice and HD95 per class, and their wall-clock, are printed and written to
``OUTPUT/results.json``. nnU-Net needs its own environment (it pins packages of its own): a venv with the
CPU torch installed first, then ``pip install nnunetv2``, whose ``bin/`` is ``--nnunet_bin``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def split_folder(dataset_dir: Path, out: Path, num_labeled: int, seed: int) -> tuple[Path, Path]:
    """``out/labelled`` and ``out/unseen``: MSD folders of symlinks, split with ``seed``. A folder that already
    holds another split is refused before anything is written, not mixed with this one."""
    from monai_genseg.data import load_datalist
    from monai_genseg.data.datalist import seeded_order

    cases = load_datalist(str(dataset_dir))
    order = seeded_order(len(cases), seed)
    parts = {"labelled": [cases[i] for i in order[:num_labeled]], "unseen": [cases[i] for i in order[num_labeled:]]}
    subs = (("image", "imagesTr"), ("label", "labelsTr"))
    listed = {
        name: [{k: f"./{sub}/{Path(c[k]).name}" for k, sub in subs} for c in chosen] for name, chosen in parts.items()
    }
    for name, entries in listed.items():
        written = out / name / "dataset.json"
        if written.exists() and json.loads(written.read_text()).get("training") != entries:
            raise SystemExit(f"{out / name} holds another split (seed or cases differ): give an empty --output")
    for name, chosen in parts.items():
        for _, sub in subs:
            (out / name / sub).mkdir(parents=True, exist_ok=True)
        for case in chosen:
            for key, sub in subs:
                target = out / name / sub / Path(case[key]).name
                if not target.exists():
                    target.symlink_to(os.path.abspath(case[key]))
        (out / name / "dataset.json").write_text(json.dumps({"training": listed[name]}, indent=1))
    return out / "labelled", out / "unseen"


class GpuMemory:
    """The peak GPU memory in use (MiB, ``nvidia-smi``: the whole card, CUDA contexts included) while
    the ``with`` block runs; ``peak`` stays None without ``nvidia-smi``."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak, self._stop = interval, None, threading.Event()

    def _poll(self) -> None:
        query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
        while not self._stop.wait(self.interval):
            used = subprocess.run(query, capture_output=True, text=True).stdout.split()
            if used:
                self.peak = max(self.peak or 0, max(int(u) for u in used))

    def __enter__(self) -> GpuMemory:
        self._thread = threading.Thread(target=self._poll, daemon=True) if shutil.which("nvidia-smi") else None
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def run(cmd: list[str], log: Path, env: dict | None = None) -> float:
    """Run ``cmd`` with its output in ``log``; the seconds it took."""
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:6])}... failed ({proc.returncode}); see {log}")
    return time.perf_counter() - start


def genseg(bundle: str, labelled: Path, unseen: Path, out: Path, seed: int, options: list[str] = ()) -> dict:
    """The bundle's ``train.yaml`` then ``evaluate.yaml``, each given ``options`` (``--key value`` pairs)."""
    cfg = REPO / "bundles" / bundle / "configs"
    common = ["--bundle_root", str(out / "genseg"), "--dataset_dir", str(labelled), "--seed", str(seed), *options]
    train = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(cfg / "train.yaml")] + common
    with GpuMemory() as memory:
        seconds = run(train, out / "genseg_train.log")
    both = json.dumps([str(cfg / "train.yaml"), str(cfg / "evaluate.yaml")])
    evaluate = [sys.executable, "-m", "monai.bundle", "run", "--config_file", both, "--eval_dataset_dir", str(unseen)]
    run(evaluate + common, out / "genseg_eval.log")
    summary = json.loads((out / "genseg" / "eval" / "metrics.json").read_text())["summary"]
    plan = json.loads((out / "genseg" / "models" / "plan.json").read_text())
    return {"train_seconds": round(seconds), "gpu_peak_mib": memory.peak, "summary": summary, "plan": plan}


def nnunet(bin_dir: Path, trainer: str, labelled: Path, unseen: Path, out: Path, class_names: list[str]) -> dict:
    """nnU-Net v2 on ``labelled`` (fold ``all``), its predictions of ``unseen`` scored with MONAI's metrics."""
    import torch

    root = out / "nnunet"
    raw = root / "raw" / "Dataset104_Genseg"
    env = dict(
        os.environ,
        nnUNet_raw=str(root / "raw"),
        nnUNet_preprocessed=str(root / "preprocessed"),
        nnUNet_results=str(root / "results"),
    )
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (raw / sub).mkdir(parents=True, exist_ok=True)
    for folder, images in ((labelled, "imagesTr"), (unseen, "imagesTs")):
        for case in json.loads((folder / "dataset.json").read_text())["training"]:
            name = Path(case["image"]).name.replace(".nii.gz", "")
            (raw / images / f"{name}_0000.nii.gz").unlink(missing_ok=True)
            (raw / images / f"{name}_0000.nii.gz").symlink_to((folder / case["image"]).resolve())
            if images == "imagesTr":
                (raw / "labelsTr" / f"{name}.nii.gz").unlink(missing_ok=True)
                (raw / "labelsTr" / f"{name}.nii.gz").symlink_to((folder / case["label"]).resolve())
    labels = {"background": 0, **{n: i + 1 for i, n in enumerate(class_names)}}
    meta = {"channel_names": {"0": "MRI"}, "labels": labels, "numTraining": len(list((raw / "imagesTr").iterdir()))}
    (raw / "dataset.json").write_text(json.dumps({**meta, "file_ending": ".nii.gz"}, indent=1))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    seconds = {}
    seconds["plan"] = run(
        [str(bin_dir / "nnUNetv2_plan_and_preprocess"), "-d", "104", "-c", "3d_fullres", "-np", "2"],
        out / "nnunet_plan.log",
        env,
    )
    seconds["train"] = run(
        [str(bin_dir / "nnUNetv2_train"), "104", "3d_fullres", "all", "-tr", trainer, "-device", device],
        out / "nnunet_train.log",
        env,
    )
    pred = root / "predictions"
    seconds["predict"] = run(
        [str(bin_dir / "nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(pred), "-d", "104"]
        + ["-c", "3d_fullres", "-f", "all", "-tr", trainer, "-device", device],
        out / "nnunet_predict.log",
        env,
    )
    return {"seconds": {k: round(v) for k, v in seconds.items()}, "summary": score(pred, unseen, class_names)}


def score(pred_dir: Path, unseen: Path, class_names: list[str]) -> dict:
    """Mean Dice and HD95 per class of ``pred_dir``'s NIfTI predictions against ``unseen``'s labels."""
    import nibabel as nib
    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric
    from monai.networks.utils import one_hot

    n = len(class_names) + 1
    dice, hd95 = DiceMetric(include_background=False), HausdorffDistanceMetric(include_background=False, percentile=95)
    for case in json.loads((unseen / "dataset.json").read_text())["training"]:
        label = nib.load(unseen / case["label"])
        p = nib.load(pred_dir / Path(case["image"]).name)
        y = one_hot(torch.as_tensor(np.asarray(label.dataobj))[None, None].long(), n)
        yp = one_hot(torch.as_tensor(np.asarray(p.dataobj))[None, None].long(), n)
        dice(yp, y)
        hd95(yp, y, spacing=[float(s) for s in label.header.get_zooms()[:3]])
    d, h = dice.aggregate("mean_batch"), hd95.aggregate("mean_batch")
    out = {f"val_mean_dice_{c}": {"mean": float(d[i])} for i, c in enumerate(class_names)}
    out.update({f"hd95_{c}": {"mean": float(h[i])} for i, c in enumerate(class_names)})
    return out


def machine() -> str:
    """The CPU count, the GPU (if any) and the software versions a result was measured with."""
    import torch

    query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]  # no CUDA context in this process
    names = subprocess.run(query, capture_output=True, text=True).stdout.strip() if shutil.which("nvidia-smi") else ""
    gpu = f", {names.replace(chr(10), ', ')}" if names else ", no GPU"
    versions = f"python {platform.python_version()}, torch {torch.__version__}"
    return f"{platform.machine()}, {os.cpu_count()} cpus{gpu}, {versions}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset_dir",
        help="a folder to split (MSD, or images/ + masks/); or give --labelled_dir and --unseen_dir",
    )
    parser.add_argument("--labelled_dir", help="an MSD folder of the labelled cases (a split made already)")
    parser.add_argument("--unseen_dir", help="an MSD folder of the cases to score")
    parser.add_argument("--bundle", default="hippocampus3d")
    parser.add_argument("--num_labeled", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    parser.add_argument("--nnunet_bin", help="the bin/ folder of an environment with nnunetv2 installed")
    parser.add_argument("--nnunet_trainer", default="nnUNetTrainer_10epochs")
    parser.add_argument("--skip_genseg", action="store_true")
    parser.add_argument(
        "--split_only",
        action="store_true",
        help="write the split of --dataset_dir to OUTPUT/labelled and OUTPUT/unseen and stop",
    )
    parser.add_argument("--scale", default="auto", help="monai-genseg's preset: auto (the plan), demo or gpu")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a bundle option, e.g. presets#gpu#max_epochs=8"
    )
    args = parser.parse_args()
    from monai_genseg.bundle import get_recipe

    if args.split_only and not args.dataset_dir:
        parser.error("--split_only splits --dataset_dir; give it")
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"command: {' '.join(sys.argv)}")
    print(f"machine: {machine()}; seed {args.seed}")
    if args.labelled_dir and args.unseen_dir:
        labelled, unseen = Path(args.labelled_dir).resolve(), Path(args.unseen_dir).resolve()
    elif args.dataset_dir:
        labelled, unseen = split_folder(Path(args.dataset_dir), out, args.num_labeled, args.seed)
    else:
        parser.error("give --dataset_dir, or --labelled_dir and --unseen_dir")
    if args.split_only:
        print(f"labelled: {labelled}\nunseen: {unseen}")
        return
    results: dict = {"command": " ".join(sys.argv), "seed": args.seed, "machine": machine()}
    names = list(get_recipe(args.bundle).class_names)
    if not args.skip_genseg:
        options = ["--scale", args.scale]
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                parser.error(f"--set {item}: expected KEY=VALUE")
            options += [f"--{key}", value]
        results["monai_genseg"] = genseg(args.bundle, labelled, unseen, out, args.seed, options)
    if args.nnunet_bin:
        results["nnunet"] = nnunet(Path(args.nnunet_bin), args.nnunet_trainer, labelled, unseen, out, names)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    for tool in ("monai_genseg", "nnunet"):
        if tool in results:
            s = results[tool]["summary"]
            cells = ", ".join(
                f"{c} Dice {s[f'val_mean_dice_{c}']['mean']:.3f} HD95 {s[f'hd95_{c}']['mean']:.2f}" for c in names
            )
            seconds = results[tool].get("train_seconds", results[tool].get("seconds"))
            memory = results[tool].get("gpu_peak_mib")
            print(f"{tool}: {cells}; seconds {seconds}" + (f"; peak GPU memory {memory} MiB" if memory else ""))


if __name__ == "__main__":
    main()
