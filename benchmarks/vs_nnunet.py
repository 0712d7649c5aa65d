"""monai-genseg's planned default against nnU-Net v2 on the same few labelled cases, scored on the rest.

    python benchmarks/vs_nnunet.py --dataset_dir ../shared/data/hippocampus --num_labeled 8 --seed 0 \
        --output study/vs_nnunet --nnunet_bin /opt/nnunet/bin --nnunet_trainer nnUNetTrainer_10epochs

Picks ``num_labeled`` cases of a dataset folder (any layout ``--dataset_dir`` takes) with ``seed`` and writes
them (symlinks) to ``OUTPUT/labelled``; every other case goes to ``OUTPUT/unseen``. ``--split_only`` stops
there: that is how the ISIC 40 of ``vs_nnunet.md`` is made (``--dataset_dir ../shared/data/isic2017/train
--num_labeled 40 --seed 0``). ``--labelled_dir`` and ``--unseen_dir`` take a split made already. Then:

1. **monai-genseg**: ``train.yaml`` with only ``--dataset_dir OUTPUT/labelled`` (the plan, its time
   budget, ``--mode auto``), then ``evaluate.yaml --eval_dataset_dir OUTPUT/unseen`` (and each further
   ``--unseen_dir``).
2. **nnU-Net v2** (skipped without ``--nnunet_bin``): ``nnUNetv2_plan_and_preprocess``, ``nnUNetv2_train``
   on fold ``all`` (5 folds do not exist at 8 cases) with ``-device cpu`` unless CUDA is there
   (``--nnunet_device`` says otherwise), and
   ``nnUNetv2_predict`` on the unseen images; its predictions are scored by the same MONAI metrics. 2D
   bundles use nnU-Net's ``2d`` configuration on PNG copies (nnU-Net reads 2D images as PNGs).

Both tools' mean Dice and HD95 per class, and their wall-clock, are printed and written to
``OUTPUT/results.json``; each case's scores go to ``OUTPUT/genseg/eval<i>/metrics_per_case.csv`` and
``OUTPUT/nnunet/predictions<i>_per_case.csv``, which ``benchmarks/paired_cases.py`` pairs. nnU-Net needs its
own environment (it pins packages of its own): a venv with the CPU torch installed first, then ``pip install
nnunetv2``, whose ``bin/`` is ``--nnunet_bin``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
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


def genseg(bundle: str, labelled: Path, unseen: list[Path], out: Path, seed: int, options: list[str] = ()) -> dict:
    """The bundle's ``train.yaml``, then ``evaluate.yaml`` on each ``unseen`` folder; each given ``options``."""
    cfg = REPO / "bundles" / bundle / "configs"
    common = ["--bundle_root", str(out / "genseg"), "--dataset_dir", str(labelled), "--seed", str(seed), *options]
    train = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(cfg / "train.yaml")] + common
    with GpuMemory() as memory:
        seconds = run(train, out / "genseg_train.log")
    both = json.dumps([str(cfg / "train.yaml"), str(cfg / "evaluate.yaml")])
    scores = {}
    for i, folder in enumerate(unseen):
        written = out / "genseg" / f"eval{i}"
        evaluate = [sys.executable, "-m", "monai.bundle", "run", "--config_file", both, "--eval_dataset_dir"]
        run(evaluate + [str(folder), "--output_dir", str(written)] + common, out / f"genseg_eval{i}.log")
        scores[str(folder)] = json.loads((written / "metrics.json").read_text())["summary"]
    plan = json.loads((out / "genseg" / "models" / "plan.json").read_text())
    return {"train_seconds": round(seconds), "gpu_peak_mib": memory.peak, "scores": scores, "plan": plan}


def read_labels(path: str | Path, num_classes: int) -> np.ndarray:
    """A label file as label indices, the way the bundles read it: NIfTI as stored; a 2D mask's first channel,
    0/255 thresholded at 128 (:class:`~monai_genseg.transforms.MaskToLabels`)."""
    import torch

    from monai_genseg.transforms import MaskToLabels

    if str(path).endswith((".nii", ".nii.gz")):
        import nibabel as nib

        return np.asarray(nib.load(path).dataobj)
    from PIL import Image

    mask = np.atleast_3d(np.array(Image.open(path)))  # (H, W, C), writable for torch
    return MaskToLabels(num_classes)(torch.as_tensor(np.moveaxis(mask, -1, 0)))[0].numpy()


def file_ending(recipe) -> str:
    """The file type nnU-Net reads for the recipe's images: PNG in 2D (its natural-image reader), else NIfTI."""
    return ".png" if recipe.spatial_dims == 2 else ".nii.gz"


def nnunet_raw(raw: Path, labelled: Path, unseen: list[Path], recipe) -> str:
    """nnU-Net's raw dataset: ``labelled`` as ``imagesTr``/``labelsTr``, each ``unseen`` folder as ``imagesTs<i>``.

    3D cases are symlinked (NIfTI, channel named by the recipe's modality, so CT gets nnU-Net's CT
    normalisation). 2D cases become PNGs, which nnU-Net's natural-image reader takes: the photograph as RGB
    (or grey), the mask as label indices. ``raw`` is made afresh (it is this script's own output), so an
    earlier run's cases never join this one's. Returns the file ending."""
    from PIL import Image

    from monai_genseg.data import load_datalist
    from monai_genseg.data.datalist import file_stem

    ending = file_ending(recipe)
    folders = [(labelled, "imagesTr")] + [(folder, f"imagesTs{i}") for i, folder in enumerate(unseen)]
    listed = {images: load_datalist(folder) for folder, images in folders}
    for (folder, _), cases in zip(folders, listed.values()):
        stems = [file_stem(c["image"]) for c in cases]
        if len(set(stems)) < len(stems):
            raise SystemExit(f"{folder}: two cases share a file name; nnU-Net names cases by it")
        if recipe.spatial_dims == 3 and not all(str(c["image"]).endswith((".nii", ".nii.gz")) for c in cases):
            raise SystemExit(f"{folder}: nnU-Net is run on NIfTI (.nii.gz) volumes here; convert the others first")
    shutil.rmtree(raw, ignore_errors=True)
    (raw / "labelsTr").mkdir(parents=True)
    for images, cases in listed.items():
        (raw / images).mkdir()
        for case in cases:
            name = file_stem(case["image"])
            image, label = raw / images / f"{name}_0000{ending}", raw / "labelsTr" / f"{name}{ending}"
            if recipe.spatial_dims == 3:
                image.symlink_to(Path(case["image"]).resolve())
                if images == "imagesTr":
                    label.symlink_to(Path(case["label"]).resolve())
                continue
            Image.open(case["image"]).convert("RGB" if recipe.image_channels == 3 else "L").save(image)
            if images == "imagesTr":
                Image.fromarray(read_labels(case["label"], recipe.num_classes).astype(np.uint8)).save(label)
    channels = ("R", "G", "B") if recipe.spatial_dims == 2 and recipe.image_channels == 3 else (recipe.modality,)
    meta = {
        "channel_names": dict(enumerate(channels)),
        "labels": {"background": 0, **{n: i + 1 for i, n in enumerate(recipe.class_names)}},
        "numTraining": len(listed["imagesTr"]),
        "file_ending": ending,
    }
    (raw / "dataset.json").write_text(json.dumps(meta, indent=1))
    return ending


def nnunet(
    bin_dir: Path, trainer: str, labelled: Path, unseen: list[Path], out: Path, recipe, device: str = "auto"
) -> dict:
    """nnU-Net v2 on ``labelled`` (fold ``all``), its predictions of each ``unseen`` folder scored with MONAI's
    metrics. ``device`` ``auto`` asks this script's torch; nnU-Net's own environment may see otherwise (a CPU
    torch there on a GPU machine), hence ``--nnunet_device``."""
    import torch

    root = out / "nnunet"
    env = dict(
        os.environ,
        nnUNet_raw=str(root / "raw"),
        nnUNet_preprocessed=str(root / "preprocessed"),
        nnUNet_results=str(root / "results"),
    )
    raw = root / "raw" / "Dataset104_Genseg"
    nnunet_raw(raw, labelled, unseen, recipe)
    config = "2d" if recipe.spatial_dims == 2 else "3d_fullres"
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    seconds = {}
    seconds["plan"] = run(
        [str(bin_dir / "nnUNetv2_plan_and_preprocess"), "-d", "104", "-c", config, "-np", "2"],
        out / "nnunet_plan.log",
        env,
    )
    seconds["train"] = run(
        [str(bin_dir / "nnUNetv2_train"), "104", config, "all", "-tr", trainer, "-device", device],
        out / "nnunet_train.log",
        env,
    )
    scores = {}
    for i, folder in enumerate(unseen):
        pred = root / f"predictions{i}"
        seconds[f"predict{i}"] = run(
            [str(bin_dir / "nnUNetv2_predict"), "-i", str(raw / f"imagesTs{i}"), "-o", str(pred), "-d", "104"]
            + ["-c", config, "-f", "all", "-tr", trainer, "-device", device],
            out / f"nnunet_predict{i}.log",
            env,
        )
        scores[str(folder)] = score(pred, folder, recipe)
    return {"seconds": {k: round(v) for k, v in seconds.items()}, "scores": scores}


def score(pred_dir: Path, unseen: Path, recipe) -> dict:
    """Mean Dice and HD95 per class of ``pred_dir``'s predictions (nnU-Net's names: the image's stem) against
    ``unseen``'s labels; HD95 in mm for NIfTI, in pixels for 2D images. Each case's Dice and HD95 go to
    ``<pred_dir>_per_case.csv`` under the names ``evaluate.yaml``'s ``metrics_per_case.csv`` uses (so
    ``benchmarks/paired_cases.py`` pairs the two), and the summary follows ``metrics.json``'s rule: means over
    the finite values (an empty reference has no Dice; an empty prediction's HD95 is infinite)."""
    import nibabel as nib
    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric
    from monai.networks.utils import one_hot

    from monai_genseg.data import load_datalist
    from monai_genseg.data.datalist import file_stem
    from monai_genseg.handlers.case_metrics import finite_mean, summarise

    n, names = recipe.num_classes, list(recipe.class_names)
    ending = file_ending(recipe)
    dice, hd95 = DiceMetric(include_background=False), HausdorffDistanceMetric(include_background=False, percentile=95)
    cases = load_datalist(unseen)
    for case in cases:
        label = read_labels(case["label"], n)
        prediction = read_labels(pred_dir / f"{file_stem(case['image'])}{ending}", n)
        if prediction.shape != label.shape:
            raise SystemExit(
                f"{pred_dir}: the prediction of {case['image']} is {prediction.shape}, its label {label.shape}"
            )
        y = one_hot(torch.as_tensor(label)[None, None].long(), n)
        yp = one_hot(torch.as_tensor(prediction)[None, None].long(), n)
        spacing = [float(s) for s in nib.load(case["label"]).header.get_zooms()[:3]] if ending == ".nii.gz" else None
        dice(yp, y)
        hd95(yp, y, spacing=spacing)
    rows = []
    for case, d, h in zip(cases, dice.get_buffer().tolist(), hd95.get_buffer().tolist()):
        row: dict = {"case": Path(case["image"]).name}
        for metric, values in (("val_mean_dice", d), ("hd95", h)):
            row.update({f"{metric}_{c}": v for c, v in zip(names, values)})
            row[f"{metric}_mean"] = finite_mean(values)
        row.update({f"reference_empty_{c}": not math.isfinite(v) for c, v in zip(names, d)})
        rows.append(row)
    with open(pred_dir.with_name(f"{pred_dir.name}_per_case.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return summarise(rows)


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
    parser.add_argument("--labelled_dir", help="a folder of the labelled cases (a split made already)")
    parser.add_argument(
        "--unseen_dir",
        action="append",
        help="a folder of cases to score (MSD, images/ + masks/, or a datalist JSON); repeat it to score several",
    )
    parser.add_argument("--bundle", default="hippocampus3d")
    parser.add_argument("--num_labeled", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    parser.add_argument("--nnunet_bin", help="the bin/ folder of an environment with nnunetv2 installed")
    parser.add_argument("--nnunet_trainer", default="nnUNetTrainer_10epochs")
    parser.add_argument(
        "--nnunet_device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="nnU-Net's -device; auto: cuda where this script's torch sees a GPU",
    )
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
    if args.dataset_dir and args.labelled_dir:
        parser.error("give --dataset_dir (to split) or --labelled_dir (a split made already), not both")
    if args.labelled_dir and not args.unseen_dir:
        parser.error("--labelled_dir needs --unseen_dir: the cases to score")
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"command: {' '.join(sys.argv)}")
    print(f"machine: {machine()}; seed {args.seed}")
    if args.labelled_dir:
        labelled, unseen = Path(args.labelled_dir).resolve(), [Path(u).resolve() for u in args.unseen_dir]
    elif args.dataset_dir:
        labelled, split = split_folder(Path(args.dataset_dir), out, args.num_labeled, args.seed)
        unseen = [split] + [Path(u).resolve() for u in args.unseen_dir or ()]
    else:
        parser.error("give --dataset_dir, or --labelled_dir and --unseen_dir")
    if args.split_only:
        print(f"labelled: {labelled}\nunseen: {unseen[0]}")
        return
    results: dict = {"command": " ".join(sys.argv), "seed": args.seed, "machine": machine()}
    recipe = get_recipe(args.bundle)
    if not args.skip_genseg:
        options = ["--scale", args.scale]
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                parser.error(f"--set {item}: expected KEY=VALUE")
            options += [f"--{key}", value]
        results["monai_genseg"] = genseg(args.bundle, labelled, unseen, out, args.seed, options)
    if args.nnunet_bin:
        results["nnunet"] = nnunet(
            Path(args.nnunet_bin), args.nnunet_trainer, labelled, unseen, out, recipe, args.nnunet_device
        )
    (out / "results.json").write_text(json.dumps(results, indent=1))
    for tool in ("monai_genseg", "nnunet"):
        if tool not in results:
            continue
        seconds = results[tool].get("train_seconds", results[tool].get("seconds"))
        memory = results[tool].get("gpu_peak_mib")
        print(f"{tool}: seconds {seconds}" + (f"; peak GPU memory {memory} MiB" if memory else ""))
        for folder, s in results[tool]["scores"].items():
            cells = ", ".join(
                f"{c} Dice {s[f'val_mean_dice_{c}']['mean']:.3f} HD95 {s[f'hd95_{c}']['mean']:.2f}"
                for c in recipe.class_names
            )
            print(f"  {folder}: mean Dice {s['val_mean_dice_mean']['mean']:.4f}; {cells}")


if __name__ == "__main__":
    main()
