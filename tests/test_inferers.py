import pytest
import torch
from monai.inferers import SimpleInferer

from monai_genseg.inferers import MirroringInferer


def _net(x: torch.Tensor) -> torch.Tensor:
    ramp = torch.arange(x.shape[-1], dtype=x.dtype)  # not flip-equivariant along the last axis
    return x * ramp


def test_mirroring_averages_the_flipped_outputs_flipped_back():
    x = torch.rand(1, 2, 4, 5)
    out = MirroringInferer(SimpleInferer(), spatial_axes=[1])(x, _net)
    expected = (_net(x) + torch.flip(_net(torch.flip(x, [3])), [3])) / 2
    assert torch.allclose(out, expected)
    both = MirroringInferer(SimpleInferer(), spatial_axes=[0, 1])(x, _net)
    flips = [[], [2], [3], [2, 3]]
    expected = sum(torch.flip(_net(torch.flip(x, f)), f) if f else _net(x) for f in flips) / 4
    assert torch.allclose(both, expected)


def test_no_axes_is_the_inferer_itself_and_bad_axes_are_refused():
    x = torch.rand(1, 1, 3, 3, 3)
    assert torch.equal(MirroringInferer(SimpleInferer())(x, _net), _net(x))
    with pytest.raises(ValueError, match="distinct axes"):
        MirroringInferer(SimpleInferer(), spatial_axes=[0, 0])
