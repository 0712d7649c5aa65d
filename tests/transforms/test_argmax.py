"""The label map inference saves: the same as MONAI's AsDiscrete(argmax=True), metadata kept."""

import sys
from pathlib import Path

import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import AsDiscrete

from monai_genseg.transforms import ArgMax, ArgMaxd


@pytest.mark.parametrize("flip", [False, True], ids=["as made", "flipped"])
def test_labels_match_monai_argmax_including_ties_and_keep_the_affine(flip):
    scores = torch.softmax(torch.randn(3, 9, 8, 7), dim=0)
    scores[:, 0, 0, 0] = torch.tensor([0.2, 0.4, 0.4])  # a tie: both take the first of the equal maxima
    scores[:, 1, 0, 0] = 1 / 3
    if flip:
        scores = scores.flip(1)  # as the inverse of a reorientation leaves it: not contiguous along the axis
    affine = torch.diag(torch.tensor([0.7, 0.7, 2.5, 1.0], dtype=torch.float64))
    x = MetaTensor(scores, affine=affine, meta={"filename_or_obj": "case.nii.gz"})
    expected = AsDiscrete(argmax=True)(x)
    out = ArgMaxd("pred")({"pred": x})["pred"]
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "case.nii.gz"
    assert torch.equal(out.affine, affine)
    assert out.shape == (1, 9, 8, 7) and out.dtype == expected.dtype == torch.float32
    assert torch.equal(out.as_tensor(), expected.as_tensor())
    i, j = (8, 7) if flip else (0, 1)  # where the two tied voxels went
    assert out[0, i, 0, 0] == 1 and out[0, j, 0, 0] == 0


def test_integer_labels_when_asked():
    assert ArgMax(torch.uint8)(torch.eye(3).view(3, 3, 1)).flatten().tolist() == [0, 1, 2]


def test_the_benchmark_checks_agreement_and_reports_both_layouts(capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from argmax_speed import main

    ratios = main(["--shape", "2", "16", "16", "8", "--repeats", "1"])
    assert set(ratios) == {"as made", "flipped"} and all(r > 0 for r in ratios.values())
    out = capsys.readouterr().out
    assert "command: python benchmarks/argmax_speed.py --shape 2 16 16 8" in out and "machine:" in out
