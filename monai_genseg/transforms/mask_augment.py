"""Label-safe random deformation of segmentation masks, batched on the training device.

GenSeg feeds augmented real masks to the generator to obtain new synthetic image/mask pairs. The
masks are resampled with nearest-neighbour interpolation so label values survive unchanged; the
whole batch is deformed in one ``grid_sample`` call on whatever device the masks live on.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform


def _rotation(spatial_dims: int, angles: np.ndarray) -> np.ndarray:
    """Rotation matrix from one angle (2D) or three Euler angles (3D), in radians."""
    if spatial_dims == 2:
        c, s = math.cos(angles[0]), math.sin(angles[0])
        return np.array([[c, -s], [s, c]])
    rot = np.eye(3)
    for axis, a in enumerate(angles):
        c, s = math.cos(a), math.sin(a)
        i, j = [k for k in range(3) if k != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rot = rot @ r
    return rot


class RandMaskAugment(RandomizableTransform):
    """Random flip, rotation, scale, translation, shear and elastic deformation of label maps.

    Works on a channel-first mask ``(C, *spatial)`` or a batch ``(B, C, *spatial)`` (told apart by
    ``spatial_dims``); each batch item draws its own deformation, and all channels of an item share it.
    Label values are preserved exactly (nearest-neighbour); regions moved in from outside become 0.

    Args:
        spatial_dims: 2 or 3.
        prob: probability that an item is deformed at all.
        flip_prob: per-axis probability of a mirror flip.
        rotate_range: maximum absolute rotation in degrees (about every axis in 3D).
        scale_range: (min, max) isotropic zoom factor.
        translate_range: maximum shift as a fraction of the field of view.
        shear_range: maximum absolute shear coefficient.
        elastic_magnitude: standard deviation of the smooth displacement, as a fraction of the field of view.
        elastic_grid: number of control points per axis of the smooth displacement field.
    """

    def __init__(
        self,
        spatial_dims: int,
        prob: float = 1.0,
        flip_prob: float = 0.5,
        rotate_range: float = 15.0,
        scale_range: tuple[float, float] = (0.8, 1.2),
        translate_range: float = 0.1,
        shear_range: float = 0.1,
        elastic_magnitude: float = 0.02,
        elastic_grid: int = 4,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        self.spatial_dims = spatial_dims
        self.flip_prob = flip_prob
        self.rotate_range = rotate_range
        self.scale_range = scale_range
        self.translate_range = translate_range
        self.shear_range = shear_range
        self.elastic_magnitude = elastic_magnitude
        self.elastic_grid = elastic_grid
        self._theta = np.zeros((0, spatial_dims, spatial_dims + 1))
        self._displacement = np.zeros((0,))

    def randomize(self, batch_size: int) -> None:  # type: ignore[override]
        """Draw one affine matrix and one coarse displacement field per batch item."""
        d = self.spatial_dims
        thetas, coarse = [], []
        for _ in range(batch_size):
            apply = self.R.rand() < self.prob
            if not apply:
                thetas.append(np.concatenate([np.eye(d), np.zeros((d, 1))], axis=1))
                coarse.append(np.zeros((d, *([self.elastic_grid] * d))))
                continue
            flips = np.where(self.R.rand(d) < self.flip_prob, -1.0, 1.0)
            angles = np.deg2rad(self.R.uniform(-self.rotate_range, self.rotate_range, 1 if d == 2 else 3))
            scale = self.R.uniform(*self.scale_range)
            shear = np.eye(d) + np.triu(self.R.uniform(-self.shear_range, self.shear_range, (d, d)), k=1)
            # grid_sample maps output to input coordinates, so zooming in by `scale` divides the grid.
            linear = _rotation(d, angles) @ shear @ np.diag(flips) / scale
            shift = self.R.uniform(-self.translate_range, self.translate_range, d) * 2.0
            thetas.append(np.concatenate([linear, shift[:, None]], axis=1))
            coarse.append(self.R.normal(0.0, self.elastic_magnitude * 2.0, (d, *([self.elastic_grid] * d))))
        self._theta = np.stack(thetas)
        self._displacement = np.stack(coarse)

    def __call__(self, mask: torch.Tensor, randomize: bool = True) -> torch.Tensor:  # type: ignore[override]
        mask_t = torch.as_tensor(mask)
        batched = mask_t.ndim == self.spatial_dims + 2
        if not batched and mask_t.ndim != self.spatial_dims + 1:
            raise ValueError(
                f"expected a mask of shape (C, *spatial) or (B, C, *spatial) with {self.spatial_dims} spatial "
                f"dims, got shape {tuple(mask_t.shape)}."
            )
        batch = mask_t if batched else mask_t[None]
        if randomize:
            self.randomize(batch.shape[0])
        if self._theta.shape[0] != batch.shape[0]:
            raise ValueError(f"drawn parameters are for {self._theta.shape[0]} items, got {batch.shape[0]}.")
        device, spatial = batch.device, batch.shape[2:]
        theta = torch.as_tensor(self._theta, dtype=torch.float32, device=device)
        grid = F.affine_grid(theta, [batch.shape[0], 1, *spatial], align_corners=False)
        coarse = torch.as_tensor(self._displacement, dtype=torch.float32, device=device)
        mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
        smooth = F.interpolate(coarse, size=tuple(spatial), mode=mode, align_corners=True)
        grid = grid + smooth.movedim(1, -1)  # isotropic noise, so channel order is immaterial
        out = F.grid_sample(batch.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
        out = out.to(batch.dtype)
        return out if batched else out[0]


class RandMaskAugmentd(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`RandMaskAugment`: every key gets the same deformation."""

    def __init__(self, keys: KeysCollection, spatial_dims: int, allow_missing_keys: bool = False, **kwargs) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.augment = RandMaskAugment(spatial_dims, **kwargs)
        RandomizableTransform.__init__(self, self.augment.prob)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        self.augment.set_random_state(seed, state)
        return super().set_random_state(seed, state)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        first = True
        for key in self.key_iterator(d):
            mask = torch.as_tensor(d[key])
            batch_size = mask.shape[0] if mask.ndim == self.augment.spatial_dims + 2 else 1
            if first:
                self.augment.randomize(batch_size)
                first = False
            d[key] = self.augment(mask, randomize=False)
        return d


__all__: Sequence[str] = ["RandMaskAugment", "RandMaskAugmentd"]
