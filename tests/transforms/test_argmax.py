"""The label map inference saves: the same as MONAI's AsDiscrete(argmax=True), metadata kept."""

from pathlib import Path

import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import AsDiscrete

from monai_genseg.transforms import ArgMax, ArgMaxd


@pytest.mark.parametrize("view", [False, True], ids=["contiguous", "transposed view"])
def test_labels_match_monai_argmax_including_ties_and_keep_the_affine(view):
    scores = torch.softmax(torch.randn(3, 9, 8, 7), dim=0)
    scores[:, 0, 0, 0] = torch.tensor([0.2, 0.4, 0.4])  # a tie: both take the first of the equal maxima
    scores[:, 1, 0, 0] = 1 / 3
    if view:  # the same values with other strides, as an inverse reorientation that swaps axes leaves them
        scores = scores.transpose(1, 3).contiguous().transpose(1, 3)
        assert not scores.is_contiguous()
    affine = torch.diag(torch.tensor([0.7, 0.7, 2.5, 1.0], dtype=torch.float64))
    x = MetaTensor(scores, affine=affine, meta={"filename_or_obj": "case.nii.gz"})
    expected = AsDiscrete(argmax=True)(x)
    out = ArgMaxd("pred")({"pred": x})["pred"]
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "case.nii.gz"
    assert torch.equal(out.affine, affine)
    assert out.shape == (1, 9, 8, 7) and out.dtype == expected.dtype == torch.float32
    assert torch.equal(out.as_tensor(), expected.as_tensor())
    assert out[0, 0, 0, 0] == 1 and out[0, 1, 0, 0] == 0


def test_integer_labels_when_asked():
    labels = ArgMax(torch.uint8)(torch.eye(3).view(3, 3, 1))
    assert labels.dtype == torch.uint8 and labels.flatten().tolist() == [0, 1, 2]


def test_the_benchmark_reports_both_layouts_and_stops_when_the_labels_disagree(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import argmax_speed

    ratios = argmax_speed.main(["--shape", "2", "16", "16", "8", "--repeats", "1"])
    assert set(ratios) == {"contiguous", "transposed view"}
    out = capsys.readouterr().out
    assert "command: python benchmarks/argmax_speed.py --shape 2 16 16 8" in out and "machine:" in out
    monkeypatch.setattr(argmax_speed, "ArgMax", lambda: lambda x: x[:1] * 0)  # a wrong label map
    with pytest.raises(SystemExit, match="disagree"):
        argmax_speed.main(["--shape", "2", "16", "16", "8", "--repeats", "1"])
