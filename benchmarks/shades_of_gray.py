"""Shades of Gray colour constancy (Finlayson and Trezzi, 2004), for the ISIC arm in ``vs_nnunet.md``.

Not in the recipes: on 40 ISIC images it did not help (``benchmarks/vs_nnunet.md``). To rerun the arm, put
this folder on ``PYTHONPATH`` and append it to the bundle's loading, for training and scoring alike::

    PYTHONPATH=benchmarks python -m monai.bundle run ... "--load_transforms#5={'_target_': 'Compose',
        'transforms': [{'_target_': 'EnsureTyped', 'keys': ['image', 'label']},
                       {'_target_': 'shades_of_gray.ShadesOfGrayd', 'keys': 'image'}]}"
"""

from __future__ import annotations

import torch
from monai.transforms import MapTransform


class ShadesOfGrayd(MapTransform):
    """Divide each channel of a (C, *spatial) image in [0, 1] by its share of the illuminant, the channels'
    ``power``-norm over the image, so that a colour cast of the light or the camera turns grey; clip to [0, 1]."""

    def __init__(self, keys, power: float = 6.0) -> None:
        super().__init__(keys)
        self.power = power

    def __call__(self, data):
        d = dict(data)
        for k in self.keys:
            x = d[k]
            e = torch.as_tensor(x).float().clamp_min(0).pow(self.power).flatten(1).mean(1).pow(1 / self.power)
            e = e / e.norm().clamp_min(1e-8)
            d[k] = (x / (e * len(e) ** 0.5).clamp_min(1e-3).view(-1, *[1] * (x.ndim - 1))).clamp(0, 1)
        return d
