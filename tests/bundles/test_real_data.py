"""Short runs on real data from ../shared/data (skipped when that folder is absent).

Each trains through the bundle command on a few labelled cases and scores other real cases of the
same set with evaluate.yaml; the runs must clearly learn. ISIC runs GenSeg (end2end) at the demo
budget; hippocampus and FUSeg run the recipe docs/low_data_study.md recommends (the plain baseline on
every labelled case, final weights), whose budget is long enough for their small structures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_liver3d import BUNDLE, _cli_args

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
# the plain baseline on every labelled case, 600 segmenter steps
BASELINE_RECIPE = {"mode": "baseline", "train_on_val": True, "presets#cpu#epoch_length": 150}


def _train_and_evaluate(name: str, root: Path, dataset: Path, eval_dataset: Path | None = None, **overrides) -> dict:
    import subprocess
    import sys

    cfg = BUNDLE.parent / name / "configs"
    settings = dict({"mode": "end2end"}, **overrides, bundle_root=str(root), dataset_dir=str(dataset), num_workers=0)
    base = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--meta_file",
        str(cfg / "metadata.json"),
        "--logging_file",
        str(cfg / "logging.conf"),
    ]
    train = subprocess.run(
        base + ["--config_file", str(cfg / "train.yaml")] + _cli_args(settings),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=900,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    overlay = json.dumps([str(cfg / "train.yaml"), str(cfg / "evaluate.yaml")])
    extra = {"eval_dataset_dir": str(eval_dataset)} if eval_dataset else {}
    if settings["mode"] == "baseline":
        extra["eval_checkpoint"] = "final"
    evaluate = subprocess.run(
        base + ["--config_file", overlay] + _cli_args(dict(settings, **extra)),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=900,
    )
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    summary = json.loads((root / "eval" / "metrics.json").read_text())["summary"]
    print(
        f"{name}: "
        + ", ".join(f"{k} {v['mean']:.3f} (n={v['n']})" for k, v in summary.items() if k.startswith("val_mean_dice"))
    )
    return summary


@pytest.mark.skipif(not (SHARED / "isic2017" / "train").is_dir(), reason="../shared/data/isic2017 not present")
def test_skin_lesion2d_learns_from_40_isic_images(tmp_path):
    summary = _train_and_evaluate(
        "skin_lesion2d", tmp_path, SHARED / "isic2017" / "train", SHARED / "isic2017" / "val", num_labeled=40, num_val=8
    )
    assert summary["val_mean_dice_lesion"]["n"] == 150
    assert summary["val_mean_dice_lesion"]["mean"] > 0.5


@pytest.mark.skipif(not (SHARED / "fuseg" / "train").is_dir(), reason="../shared/data/fuseg not present")
def test_foot_ulcer2d_learns_from_40_fuseg_images(tmp_path):
    # ulcers are small: 64x64 (the cpu preset) leaves a few pixels of them, so this run uses 128x128
    summary = _train_and_evaluate(
        "foot_ulcer2d",
        tmp_path,
        SHARED / "fuseg" / "train",
        num_labeled=40,
        num_val=8,
        **BASELINE_RECIPE,
        **{"presets#cpu#patch_size": [128, 128]},
    )
    assert summary["val_mean_dice_ulcer"]["n"] > 700  # the held-out cases with an ulcer (empty masks give no Dice)
    assert summary["val_mean_dice_ulcer"]["mean"] > 0.35  # 0.50 measured


@pytest.mark.skipif(
    not (SHARED / "hippocampus" / "dataset.json").is_file(), reason="../shared/data/hippocampus not present"
)
def test_hippocampus3d_learns_from_8_mri_cases(tmp_path):
    summary = _train_and_evaluate(
        "hippocampus3d", tmp_path, SHARED / "hippocampus", num_labeled=8, num_val=4, **BASELINE_RECIPE
    )
    assert summary["val_mean_dice_mean"]["n"] == 88
    assert (
        summary["val_mean_dice_anterior"]["mean"] > 0.65 and summary["val_mean_dice_posterior"]["mean"] > 0.65
    )  # 0.81, 0.82 measured
