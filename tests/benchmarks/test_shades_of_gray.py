"""The colour constancy of the ISIC arm turns a colour cast grey and keeps MONAI's metadata."""

import sys
from pathlib import Path

import torch
from monai.data import MetaTensor

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from shades_of_gray import ShadesOfGrayd  # noqa: E402


def test_a_reddish_cast_turns_grey_and_the_image_keeps_its_metadata():
    grey = torch.rand(1, 16, 12) * 0.8
    cast = MetaTensor(grey * torch.tensor([1.0, 0.8, 0.6]).view(3, 1, 1), meta={"filename_or_obj": "a.jpg"})
    out = ShadesOfGrayd("image")({"image": cast})["image"]
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "a.jpg"
    assert torch.allclose(out[0], out[1], atol=1e-5) and torch.allclose(out[1], out[2], atol=1e-5)
    assert out.min() >= 0 and out.max() <= 1
