"""The liver3d bundle through MONAI's own runner, at small scale on the CPU."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow, verify_net_in_out

from monai_genseg.data import load_msd_datalist, write_liver_demo

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "liver3d"
CONFIGS = BUNDLE / "configs"
META = str(CONFIGS / "metadata.json")
LOGGING = str(CONFIGS / "logging.conf")

# the demo preset (GenSeg) with the counts shrunk so a run takes seconds; the wiring is the real one
TINY = {
    "scale": "demo",
    "mode": "end2end",
    "presets#demo#patch_size": [32, 32, 32],
    "presets#demo#epoch_length": 3,
    "presets#demo#max_epochs": 2,
    "presets#demo#generator_warmup_iterations": 2,
    "presets#demo#syn_rampup_iterations": 0,
    "presets#demo#generator_update_interval": 1,
    "presets#demo#arch_update_interval": 1,
    "num_labeled": 3,
    "num_val": 2,
    "num_workers": 0,
}


def _cli_args(overrides: dict) -> list[str]:
    return [f"--{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items()]


def run_bundle(configs: list[str], cwd: Path, config_dir: Path = CONFIGS, **overrides) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run`` of the bundle in ``config_dir`` (liver3d's by default) in a fresh process,
    from ``cwd``."""
    files = [str(config_dir / c) for c in configs]
    config_arg = files[0] if len(files) == 1 else json.dumps(files)
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        config_arg,
        "--meta_file",
        str(config_dir / "metadata.json"),
        "--logging_file",
        str(config_dir / "logging.conf"),
    ]
    proc = subprocess.run(
        cmd + _cli_args(overrides),
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return write_liver_demo(
        tmp_path_factory.mktemp("data") / "liver", num_cases=7, seed=0, shape=(40, 32, 32), spacing=(8.0, 8.0, 5.0)
    )


@pytest.fixture(scope="session")
def trained(tmp_path_factory, dataset) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("bundle")
    elsewhere = tmp_path_factory.mktemp("cwd")
    proc = run_bundle(["train.yaml"], cwd=elsewhere, bundle_root=str(root), dataset_dir=str(dataset), **TINY)
    return root, proc


@pytest.mark.parametrize("config,kind", [("train.yaml", "train"), ("inference.yaml", "infer")])
def test_configs_have_the_properties_monai_expects(config, kind, tmp_path):
    workflow = ConfigWorkflow(
        config_file=str(CONFIGS / config),
        meta_file=META,
        logging_file=LOGGING,
        workflow_type=kind,
        bundle_root=str(tmp_path),
    )
    workflow.initialize()  # parses the config; builds neither data nor networks
    assert workflow.check_properties() == []


@pytest.mark.parametrize("scale", ["demo", "gpu"])
def test_network_matches_metadata(scale):
    verify_net_in_out(
        net_id="network_def", meta_file=META, config_file=str(CONFIGS / "inference.yaml"), n=1, any=1, scale=scale
    )


def test_train_and_inference_build_the_same_segmenter():
    from monai.bundle import ConfigParser

    for scale in ("demo", "gpu"):
        nets = []
        for config in ("train.yaml", "inference.yaml"):
            parser = ConfigParser()
            parser.read_config(str(CONFIGS / config))
            parser["scale"] = scale
            nets.append({k: v.shape for k, v in parser.get_parsed_content("network_def").state_dict().items()})
        assert nets[0] == nets[1]


def test_training_run_from_another_folder_saves_everything(trained):
    root, proc = trained
    log = proc.stdout + proc.stderr
    assert "val_mean_dice" in log and "genotype" in log and "generator warm-up" in log
    model = torch.load(root / "models" / "model.pt", weights_only=True)
    assert any(k.endswith("weight") for k in model)
    ckpt = torch.load(root / "models" / "genseg_checkpoint.pt", weights_only=True)
    assert set(ckpt) == {
        "model",
        "generator",
        "discriminator",
        "optimizer",
        "generator_optimizer",
        "discriminator_optimizer",
        "arch_optimizer",
        "feedback_optimizer",
        "random_states",
        "best_metric",
        "trainer",
        "lr_scheduler",
    }
    assert ckpt["trainer"]["iteration"] == 6
    alphas = [v for k, v in ckpt["generator"].items() if k.endswith("alpha")]
    assert alphas and any(a.abs().sum() > 0 for a in alphas), "end2end must move the architecture logits"
    synthetic = sorted(p.name for p in (root / "eval" / "synthetic").iterdir())
    assert any(n.endswith("_image.nii.gz") for n in synthetic) and any(n.endswith("_mask.nii.gz") for n in synthetic)
    assert not list((root / "models").glob(".*tmp")), "a temporary checkpoint file was left behind"


def test_inference_writes_one_prediction_per_input_with_its_geometry(trained, dataset, tmp_path):
    root, _ = trained
    images = tmp_path / "scans"
    images.mkdir()
    for item in load_msd_datalist(dataset)[:2]:
        os.symlink(item["image"], images / Path(item["image"]).name)
    run_bundle(
        ["inference.yaml"],
        cwd=tmp_path,
        bundle_root=str(root),
        dataset_dir=str(images),
        **{"presets#demo#patch_size": [32, 32, 32]},
    )
    for src in sorted(images.iterdir()):
        out = root / "eval" / "predictions" / src.name.replace(".nii.gz", "_seg.nii.gz")
        pred, img = nib.load(out), nib.load(src)
        assert pred.shape == img.shape
        np.testing.assert_allclose(pred.affine, img.affine, atol=1e-4)
        assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2}
    # a second run must not clobber the first one's predictions
    files = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(CONFIGS / "inference.yaml"),
        "--meta_file",
        META,
    ]
    again = subprocess.run(
        files + _cli_args({"bundle_root": str(root), "dataset_dir": str(images)}),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert again.returncode != 0 and "exists already" in again.stderr


def test_evaluate_writes_per_case_metrics(trained, dataset):
    root, _ = trained
    run_bundle(["train.yaml", "evaluate.yaml"], cwd=root, bundle_root=str(root), dataset_dir=str(dataset), **TINY)
    with open(root / "eval" / "metrics_per_case.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2  # 7 cases - 3 training - 2 validation
    assert {"case", "val_mean_dice_liver", "val_mean_dice_tumour", "iou_mean", "hd95_mean"} <= set(rows[0])
    summary = json.loads((root / "eval" / "metrics.json").read_text())["summary"]
    assert 0.0 <= summary["val_mean_dice_liver"]["mean"] <= 1.0


def test_gpu_preset_trains_through_the_same_wiring(tmp_path, dataset):
    """``--scale gpu`` builds the full-size networks; only counts, patch and spacing are shrunk here."""
    small = {
        "presets#gpu#patch_size": [32, 32, 32],
        "presets#gpu#pixdim": [8.0, 8.0, 5.0],
        "presets#gpu#samples_per_volume": 1,
        "presets#gpu#epoch_length": 2,
        "presets#gpu#max_epochs": 1,
        "presets#gpu#generator_warmup_iterations": 1,
        "presets#gpu#syn_rampup_iterations": 0,
        "num_labeled": 3,
        "num_val": 2,
        "num_workers": 0,
    }
    run_bundle(["train.yaml"], cwd=tmp_path, bundle_root=str(tmp_path), dataset_dir=str(dataset), scale="gpu", **small)
    ckpt = torch.load(tmp_path / "models" / "genseg_checkpoint.pt", weights_only=True)
    assert ckpt["trainer"]["iteration"] == 2
    assert "down.3.alpha" in ckpt["generator"]  # four searchable levels: channels (32, 64, 128, 256)
    assert any(
        v.shape[0] == 320 for k, v in ckpt["model"].items() if k.endswith("weight") and v.ndim == 5
    )  # the deepest level
