"""Training that survives being killed, never overwrites an earlier run, and repeats itself exactly."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from .test_liver3d import CONFIGS, LOGGING, META, TINY, _cli_args, run_bundle


def _train_cmd(**overrides) -> list[str]:
    return [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(CONFIGS / "train.yaml"),
        "--meta_file",
        META,
        "--logging_file",
        LOGGING,
    ] + _cli_args(overrides)


def test_sigkill_then_resume_finishes_the_planned_iterations(tmp_path, dataset):
    settings = dict(TINY, **{"presets#demo#max_epochs": 4, "bundle_root": str(tmp_path), "dataset_dir": str(dataset)})
    ckpt = tmp_path / "models" / "genseg_checkpoint.pt"
    proc = subprocess.Popen(_train_cmd(**settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = torch.load(ckpt, weights_only=True)
    killed_at = killed["trainer"]["iteration"]
    assert 3 <= killed_at < 12

    resumed = run_bundle(["train.yaml"], cwd=tmp_path, resume=True, **settings)
    assert f"resumed from {ckpt}" in resumed.stdout + resumed.stderr
    final = torch.load(ckpt, weights_only=True)
    assert final["trainer"]["iteration"] == 12 and final["trainer"]["max_epochs"] == 4
    assert final["best_metric"]["best_metric"] >= killed["best_metric"]["best_metric"]  # the best so far was kept
    torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")], "partial files left behind"


def test_a_second_run_does_not_overwrite_the_first(trained, dataset):
    root, _ = trained
    before = (root / "models" / "genseg_checkpoint.pt").read_bytes()
    proc = subprocess.run(
        _train_cmd(bundle_root=str(root), dataset_dir=str(dataset), **TINY),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert proc.returncode != 0
    assert "exists from an earlier run" in proc.stderr and "--resume true" in proc.stderr
    assert (root / "models" / "genseg_checkpoint.pt").read_bytes() == before


def test_same_seed_same_metrics_on_cpu(tmp_path, dataset):
    dice, weights = [], []
    for run in ("a", "b"):
        proc = run_bundle(
            ["train.yaml"], cwd=tmp_path, bundle_root=str(tmp_path / run), dataset_dir=str(dataset), **TINY
        )
        dice.append(re.findall(r"val_mean_dice: ([0-9.]+)", proc.stdout + proc.stderr))
        weights.append(torch.load(tmp_path / run / "models" / "genseg_checkpoint.pt", weights_only=True))
    assert dice[0] and dice[0] == dice[1]
    for part in ("model", "generator", "discriminator"):
        for k, v in weights[0][part].items():
            assert torch.equal(v, weights[1][part][k]), f"{part}.{k} differs between two runs with one seed"


@pytest.mark.parametrize("stage", ["segmenter", "generator"])
def test_nonfinite_losses_skip_updates_and_a_streak_stops_the_run(trainer_factory, stage):
    trainer = trainer_factory("end2end", iterations=6, max_nonfinite_iterations=3)
    if stage == "segmenter":
        real = trainer.loss_function
        trainer.loss_function = lambda pred, target: real(pred, target) * float("nan")
    else:
        trainer.generation = dataclasses.replace(trainer.generation, lambda_l1=float("inf"))
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    gen_before = [w.clone() for w in trainer.generator.weight_parameters()]
    with pytest.raises(RuntimeError, match="3 consecutive iterations had NaN/Inf"):
        trainer.run()
    assert trainer.state.nonfinite_skips[stage] >= 3
    if stage == "segmenter":
        assert all(torch.equal(v, trainer.network.state_dict()[k]) for k, v in before.items())
    else:
        assert all(torch.equal(a, b) for a, b in zip(gen_before, trainer.generator.weight_parameters()))
    assert all(torch.isfinite(p).all() for p in trainer.generator.parameters())
