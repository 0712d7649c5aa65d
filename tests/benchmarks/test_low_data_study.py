"""The study's statistics: paired differences over seeds against the better baseline, with t-intervals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "low_data_study.py"
spec = importlib.util.spec_from_file_location("low_data_study", PATH)
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)


def _rows(dice: dict[str, list[float]]) -> list[dict]:
    return [
        {"count": 8, "arm": arm, "seed": seed, "dice": d, "train_seconds": 1.0}
        for arm, values in dice.items()
        for seed, d in enumerate(values)
    ]


def test_t_interval_matches_the_textbook_value():
    mean, sd, half = study.t_interval([1.0, 2.0, 3.0])
    assert (mean, sd) == (2.0, 1.0) and half == pytest.approx(4.303 / 3**0.5, rel=1e-3)


def test_differences_are_paired_by_seed_against_the_better_baseline():
    # seed effects are large (0.1 apart) but end2end is exactly 0.02 above baseline_strong on every seed
    summary = study.summarise(
        _rows(
            {
                "baseline": [0.70, 0.80, 0.90],
                "baseline_strong": [0.71, 0.81, 0.91],
                "joint": [0.72, 0.82, 0.92],
                "end2end": [0.73, 0.83, 0.93],
            }
        )
    )["8"]
    assert summary["strong_baseline"] == "baseline_strong"
    d = summary["differences"]["end2end - baseline_strong"]
    assert d["mean"] == pytest.approx(0.02) and d["sd"] == pytest.approx(0.0, abs=1e-12)
    assert d["ci95"][0] == pytest.approx(0.02) and d["ci95"][1] == pytest.approx(0.02)
    assert summary["differences"]["end2end - joint"]["mean"] == pytest.approx(0.01)
    assert summary["arms"]["end2end"]["dice_sd"] == pytest.approx(0.1)  # unpaired spread would hide the gain
    assert "| end2end - baseline_strong | +0.020 |" in study.markdown({"8": summary}, "#")
