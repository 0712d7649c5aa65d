"""Every bundle meets MONAI's bundle contract and runs its no-argument demo (at small scale)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow, verify_net_in_out
from PIL import Image

from monai_genseg.bundle import RECIPES, demo_test_images

from .test_liver3d import BUNDLE, _cli_args

NAMES = sorted(RECIPES)


def configs(name: str) -> Path:
    return BUNDLE.parent / name / "configs"


def tiny(name: str) -> dict:
    """The demo preset with counts shrunk; patch sizes the discriminator and generator still accept."""
    patch = [32, 32, 32] if RECIPES[name].spatial_dims == 3 else [32, 32]
    return {
        "scale": "demo",
        "mode": "end2end",
        "presets#demo#patch_size": patch,
        "presets#demo#epoch_length": 2,
        "presets#demo#max_epochs": 1,
        "presets#demo#generator_warmup_iterations": 1,
        "presets#demo#syn_rampup_iterations": 0,
        "presets#demo#generator_update_interval": 1,
        "presets#demo#arch_update_interval": 1,
        "num_labeled": 3,
        "num_val": 2,
        "num_workers": 0,
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("config,kind", [("train.yaml", "train"), ("inference.yaml", "infer")])
def test_properties(name, config, kind, tmp_path):
    cfg = configs(name)
    workflow = ConfigWorkflow(
        config_file=str(cfg / config),
        meta_file=str(cfg / "metadata.json"),
        logging_file=str(cfg / "logging.conf"),
        workflow_type=kind,
        bundle_root=str(tmp_path),
    )
    workflow.initialize()
    assert workflow.check_properties() == []


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", ["demo", "gpu"])
def test_verify_net_in_out(name, scale):
    cfg = configs(name)
    verify_net_in_out(
        net_id="network_def", meta_file=str(cfg / "metadata.json"), config_file=str(cfg / "inference.yaml"), scale=scale
    )


@pytest.mark.parametrize("name", [n for n in NAMES if n != "liver3d"])  # liver3d has its own, fuller tests
def test_demo_trains_then_infers(name, tmp_path):
    cfg = configs(name)
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
        base + ["--config_file", str(cfg / "train.yaml")] + _cli_args(dict(tiny(name), bundle_root=str(tmp_path))),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert "val_mean_dice" in train.stdout + train.stderr
    ckpt = torch.load(tmp_path / "models" / "genseg_checkpoint.pt", weights_only=True)
    assert any(v.abs().sum() > 0 for k, v in ckpt["generator"].items() if k.endswith("alpha"))

    patch = {"presets#demo#patch_size": tiny(name)["presets#demo#patch_size"]}
    infer = subprocess.run(
        base + ["--config_file", str(cfg / "inference.yaml")] + _cli_args(dict(patch, bundle_root=str(tmp_path))),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert infer.returncode == 0, infer.stderr[-3000:]
    inputs = [d["image"] for d in demo_test_images(name)]
    outputs = sorted((tmp_path / "eval" / "predictions").iterdir())
    assert len(outputs) == len(inputs)
    first_in, first_out = inputs[0], tmp_path / "eval" / "predictions" / outputs[0].name
    if RECIPES[name].spatial_dims == 3:
        assert nib.load(first_out).shape == nib.load(first_in).shape
    else:
        assert Image.open(first_out).size == Image.open(first_in).size
        assert set(np.unique(np.asarray(Image.open(first_out))).tolist()) <= {0, 255}
