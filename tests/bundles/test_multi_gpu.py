"""The multi-GPU overlay under torchrun with 2 CPU processes (gloo): the bilevel steps keep the replicas identical."""

import json
import subprocess
import sys

import torch

from .test_all_bundles import configs, tiny
from .test_liver3d import _cli_args


def _torchrun(tmp_path, **overrides) -> str:
    cfg = configs("hippocampus3d")
    files = json.dumps([str(cfg / "train.yaml"), str(cfg / "multi_gpu_train.yaml")])
    settings = dict(
        tiny("hippocampus3d"),
        **{"presets#demo#epoch_length": 3, "num_labeled": 4, "bundle_root": str(tmp_path)},
        **overrides,
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        files,
        "--meta_file",
        str(cfg / "metadata.json"),
        "--logging_file",
        str(cfg / "logging.conf"),
    ]
    proc = subprocess.run(
        cmd + _cli_args(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "rank 0: replicas consistent" in log and "rank 1: replicas consistent" in log
    return log


def test_two_processes_train_and_stay_identical_then_resume_together(tmp_path):
    _torchrun(tmp_path, **{"presets#demo#max_epochs": 1})
    ckpt = torch.load(tmp_path / "models" / "genseg_checkpoint.pt", weights_only=True)
    assert ckpt["trainer"]["iteration"] == 3  # 4 training cases over 2 ranks, 3 iterations an epoch
    assert any(v.abs().sum() > 0 for k, v in ckpt["generator"].items() if k.endswith("alpha"))

    log = _torchrun(tmp_path, resume=True, **{"presets#demo#max_epochs": 2})
    assert (
        log.count(f"resumed from {tmp_path / 'models' / 'genseg_checkpoint.pt'} at epoch 1, iteration 3") == 2
    )  # both ranks
    assert torch.load(tmp_path / "models" / "genseg_checkpoint.pt", weights_only=True)["trainer"]["iteration"] == 6
