"""Test-time mirroring: nnU-Net's averaging of a network's outputs over mirror flips of its input."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.inferers import Inferer


class MirroringInferer(Inferer):
    """Run ``inferer`` on the input and on each combination of flips along ``spatial_axes``, flip each output
    back and average them (logits, as nnU-Net does).

    Only axes the training augmentation mirrors may be listed (a recipe's ``mirror_axes``): a flip the
    network never saw, such as anterior-posterior in hippocampus after RAS, swaps classes. With no axes it
    is ``inferer`` itself. Costs ``2 ** len(spatial_axes)`` passes.
    """

    def __init__(self, inferer: Inferer, spatial_axes: Sequence[int] = ()) -> None:
        super().__init__()
        self.inferer = inferer
        self.spatial_axes = tuple(int(a) for a in spatial_axes)
        if len(set(self.spatial_axes)) != len(self.spatial_axes) or any(a < 0 for a in self.spatial_axes):
            raise ValueError(f"spatial_axes {list(spatial_axes)} must be distinct axes >= 0.")

    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any):
        out = self.inferer(inputs, network, *args, **kwargs)
        combos = [c for k in range(1, len(self.spatial_axes) + 1) for c in itertools.combinations(self.spatial_axes, k)]
        for axes in combos:
            dims = [a + 2 for a in axes]  # batch and channel come first
            out = out + torch.flip(self.inferer(torch.flip(inputs, dims), network, *args, **kwargs), dims)
        return out / (len(combos) + 1)
