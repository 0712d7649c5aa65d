"""The bundle settings the fair comparison rests on: strong paired augmentation, a baseline on every
labelled case, scoring the final weights, and one-line errors for misuse."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from monai.bundle import ConfigParser

from monai_genseg.transforms import RandPairedAugmentd

from .test_all_bundles import configs, tiny
from .test_liver3d import _cli_args

NAME = "skin_lesion2d"


def _parsed(root, **overrides) -> ConfigParser:
    """The train config parsed in this process, writing (its plan.json) under ``root``, not the working directory."""
    parser = ConfigParser()
    parser.read_config(str(configs(NAME) / "train.yaml"))
    parser.update(dict(overrides, bundle_root=str(root)))
    return parser


def test_baseline_on_every_labelled_case_with_strong_augmentation(tmp_path):
    parser = _parsed(tmp_path, mode="baseline", train_on_val=True, augmentation="strong", num_labeled=6, num_val=2)
    assert len(parser.get_parsed_content("train#dataset#data")) == 8
    assert any(isinstance(t, RandPairedAugmentd) for t in parser.get_parsed_content("train#augmentation"))
    standard = _parsed(tmp_path, num_labeled=6, num_val=2)
    assert len(standard.get_parsed_content("train#dataset#data")) == 6
    assert not any(isinstance(t, RandPairedAugmentd) for t in standard.get_parsed_content("train#augmentation"))


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"mode": "end2end", "train_on_val": True}, "--train_on_val true is for --mode baseline only"),
        ({"augmentation": "heavy"}, "--augmentation 'heavy' is not one of"),
    ],
)
def test_misuse_is_one_clear_line(overrides, message, tmp_path):
    parser = _parsed(tmp_path, num_labeled=6, num_val=2, **overrides)
    with pytest.raises(Exception) as info:
        parser.get_parsed_content("train#dataset")
    assert message in str(info.value) + str(info.value.__cause__)


def test_evaluate_scores_the_final_weights_when_asked(tmp_path):
    cfg = configs(NAME)
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
    settings = dict(tiny(NAME), bundle_root=str(tmp_path), mode="baseline", train_on_val=True, augmentation="strong")
    train = subprocess.run(
        base + ["--config_file", str(cfg / "train.yaml")] + _cli_args(settings),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    # 3 training + 2 validation cases in one batch (the preset batch is 8), and no synthetic pairs
    assert "each segmenter step reads 5 real images" in train.stdout + train.stderr
    (tmp_path / "models" / "model.pt").unlink()  # scoring the final weights must not need the best-validation model
    overlay = json.dumps([str(cfg / "train.yaml"), str(cfg / "evaluate.yaml")])
    score = subprocess.run(
        base + ["--config_file", overlay] + _cli_args(dict(settings, eval_checkpoint="final")),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert score.returncode == 0, score.stderr[-3000:]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["summary"]["val_mean_dice_mean"]["n"] > 0
