"""No silent loss and one clear line for every mistake, through MONAI's runner: the probe of the reliability issue."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monai_genseg.runlock import LOCK_NAME

from .test_liver3d import CONFIGS, LOGGING, META, TINY, _cli_args, run_bundle


def _run(config: str = "train.yaml", **overrides) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIGS / config), "--meta_file", META]
    return subprocess.run(
        cmd + ["--logging_file", LOGGING] + _cli_args(overrides),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )


def _one_line(proc: subprocess.CompletedProcess, *expected: str) -> None:
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    error = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and all(e in error[0] for e in expected), proc.stderr[-3000:]


def _copy(trained, tmp_path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(trained[0], root)
    return root


@pytest.mark.parametrize("option,word", [("overwrite", "false"), ("overwrite", "no"), ("resume", "no")])
def test_false_in_words_never_overwrites_a_finished_run(trained, dataset, option, word):
    root, _ = trained
    before = {p.name: p.read_bytes() for p in (root / "models").iterdir()}
    proc = _run(bundle_root=str(root), dataset_dir=str(dataset), **TINY, **{option: word})
    _one_line(proc, "exists from an earlier run", "--resume true")
    assert {p.name: p.read_bytes() for p in (root / "models").iterdir()} == before


@pytest.mark.parametrize(
    "options,expected",
    [
        ({"overwrite": "maybe"}, "--overwrite 'maybe' is not true or false"),
        ({"amp": "maybe"}, "--amp 'maybe' is not true or false"),
        ({"scale": "tpu"}, "--scale 'tpu' is not one of ['auto', 'demo', 'gpu']"),
        ({"mode": "gan"}, "--mode 'gan' is not one of ['baseline', 'end2end', 'joint', 'separate']"),
        ({"num_labeled": "abc"}, "--num_labeled 'abc' is not a whole number >= 1"),
    ],
)
def test_a_bad_option_is_one_line_before_any_data_is_read(tmp_path, dataset, options, expected):
    proc = _run(bundle_root=str(tmp_path), dataset_dir=str(dataset), **dict(TINY, **options))
    _one_line(proc, expected)
    assert not (tmp_path / "models").exists()


def test_a_second_run_into_a_folder_in_use_is_refused_at_once(tmp_path, dataset):
    (tmp_path / LOCK_NAME).write_text(f'{{"pid": {os.getpid()}, "host": "{socket.gethostname()}", "started": "now"}}')
    proc = _run(bundle_root=str(tmp_path), dataset_dir=str(dataset), **TINY)
    _one_line(proc, f"is in use by PID {os.getpid()} on host {socket.gethostname()}")
    assert not (tmp_path / "models").exists()


def test_an_unwritable_bundle_root_is_one_line_before_training(tmp_path, dataset):
    (tmp_path / "file").write_text("")
    _one_line(_run(bundle_root=str(tmp_path / "file" / "root"), dataset_dir=str(dataset), **TINY), "cannot write there")


def test_resuming_a_finished_run_says_so_and_changes_nothing(trained, dataset):
    root, _ = trained
    before = {p.name: p.read_bytes() for p in (root / "models").iterdir()}
    proc = run_bundle(["train.yaml"], cwd=root, bundle_root=str(root), dataset_dir=str(dataset), resume=True, **TINY)
    assert "finished all 6 iterations; nothing to resume" in proc.stdout + proc.stderr
    assert {p.name: p.read_bytes() for p in (root / "models").iterdir()} == before


@pytest.mark.parametrize("damage", ["truncated", "other preset", "model.pt replaced"])
def test_a_checkpoint_that_does_not_fit_is_refused_naming_it(trained, dataset, tmp_path, damage):
    root = _copy(trained, tmp_path)
    settings = dict(TINY, **{"presets#demo#max_epochs": 3})
    checkpoint = root / "models" / "genseg_checkpoint.pt"
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
        expected = (f"{checkpoint}: cannot resume from it, the file is unreadable",)
    elif damage == "other preset":
        settings["presets#demo#segmenter_channels"] = [4, 8, 16, 32]
        expected = (f"{checkpoint}: cannot resume from it, it was saved by another bundle or preset",)
    else:  # the disk filled after model.pt of a later epoch was written, before its checkpoint was
        model = root / "models" / "model.pt"
        model.write_bytes(model.read_bytes() + b"\0")
        expected = (f"{checkpoint}: cannot resume from it, {model} changed after this checkpoint was saved",)
    proc = _run(bundle_root=str(root), dataset_dir=str(dataset), resume=True, **settings)
    _one_line(proc, *expected)


def test_sigterm_during_training_leaves_whole_files_and_no_lock(tmp_path, dataset):
    settings = dict(TINY, **{"presets#demo#max_epochs": 40, "bundle_root": str(tmp_path), "dataset_dir": str(dataset)})
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIGS / "train.yaml")]
    proc = subprocess.Popen(cmd + _cli_args(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "models" / "genseg_checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err and "interrupted:" in err, err[-3000:]
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()], "a partial file or the lock was left behind"


def test_inference_reports_each_case(trained, dataset, tmp_path):
    root, _ = trained
    images = tmp_path / "images"
    images.mkdir()
    for case in sorted((dataset / "imagesTr").iterdir())[:2]:
        shutil.copy(case, images / case.name)
    proc = run_bundle(
        ["inference.yaml"],
        cwd=tmp_path,
        bundle_root=str(root),
        dataset_dir=str(images),
        output_dir=str(tmp_path / "out"),
    )
    out = proc.stdout + proc.stderr
    assert "case 1/2 " in out and "case 2/2 " in out and " s" in out
