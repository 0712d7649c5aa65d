"""The paired comparison every "paired by case" interval in the benchmarks comes from."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "paired_cases.py"
spec = importlib.util.spec_from_file_location("paired_cases", PATH)
paired_cases = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired_cases)


def _csv(path: Path, values: dict[str, float]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["case", "val_mean_dice_mean", "hd95_mean"])
        writer.writeheader()
        writer.writerows({"case": k, "val_mean_dice_mean": v, "hd95_mean": 1.0} for k, v in values.items())
    return path


def test_the_difference_is_paired_by_case_and_its_interval_brackets_it():
    a = {"x": 0.5, "y": 0.9, "z": 0.7, "w": 0.6}
    shifted = paired_cases.paired(a, {k: v + 0.05 for k, v in a.items()})
    assert shifted["difference"] == pytest.approx(0.05) and shifted["low"] == pytest.approx(0.05)
    assert shifted["high"] == pytest.approx(0.05)  # every case gains the same: no spread to resample
    mixed = paired_cases.paired(a, {"x": 0.6, "y": 0.9, "z": 0.6, "w": 0.9})
    assert mixed["difference"] == pytest.approx((0.1 + 0 - 0.1 + 0.3) / 4)
    assert mixed["low"] < mixed["difference"] < mixed["high"] and mixed["low"] >= -0.1 and mixed["high"] <= 0.3
    assert paired_cases.paired(a, {"x": 0.6, "y": 0.9, "z": 0.6, "w": 0.9}) == mixed  # seeded


def test_a_case_without_a_value_in_either_file_is_left_out(tmp_path):
    a = paired_cases.load(_csv(tmp_path / "a.csv", {"x": 0.5, "y": float("nan"), "z": 0.7}), "val_mean_dice_mean")
    b = paired_cases.load(_csv(tmp_path / "b.csv", {"x": 0.6, "y": 0.9, "z": 0.8}), "val_mean_dice_mean")
    r = paired_cases.paired(a, b)
    assert r["n"] == 2 and r["difference"] == pytest.approx(0.1) and r["mean_a"] == pytest.approx(0.6)


def test_files_scoring_different_cases_or_lacking_the_metric_are_refused(tmp_path, monkeypatch, capsys):
    a = _csv(tmp_path / "a.csv", {"0001.jpg": 0.5, "0002.jpg": 0.7})
    other = _csv(tmp_path / "b.csv", {"0001.jpg": 0.6, "0003.jpg": 0.8})  # another folder's 0001.jpg
    monkeypatch.setattr(sys, "argv", ["paired_cases.py", str(a), str(other)])
    with pytest.raises(SystemExit, match="score different cases \\(1 only in A, 1 only in B\\)"):
        paired_cases.main()
    monkeypatch.setattr(sys, "argv", ["paired_cases.py", str(a), str(a), "--metric", "iou_mean"])
    with pytest.raises(SystemExit, match="no column 'iou_mean'"):
        paired_cases.main()
    monkeypatch.setattr(sys, "argv", ["paired_cases.py", str(a), str(a), "--failure_below", "0.6"])
    paired_cases.main()
    assert "B - A +0.0000" in capsys.readouterr().out
