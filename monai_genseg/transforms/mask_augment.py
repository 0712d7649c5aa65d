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
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import convert_to_dst_type, convert_to_tensor, ensure_tuple_rep


def anatomy_safe_flip_prob(spatial_dims: int) -> float:
    """The flip probability the bundles augment with: 0.5 per axis in 2D; none in 3D, where after RAS
    orientation anatomy has a fixed direction and a flip would swap e.g. left and right, or anterior and
    posterior hippocampus."""
    return 0.5 if spatial_dims == 2 else 0.0


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

    def __call__(  # type: ignore[override]
        self, mask: torch.Tensor, randomize: bool = True, mode: str = "nearest"
    ) -> torch.Tensor:
        """Deform ``mask``; ``mode`` is the ``grid_sample`` interpolation ("nearest" keeps label values exact).

        With ``mode="bilinear"`` (trilinear for 3D volumes; "trilinear" is accepted as an alias) the same
        deformation can be applied to an image: floating-point inputs keep their dtype, integer inputs come
        back as float32. Regions moved in from outside become 0 ("zeros" padding), which suits images
        scaled to [0, 1].
        """
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
        out = self._warp(batch, mode)
        return out if batched else out[0]

    def _warp(self, batch: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
        """Resample a ``(B, C, *spatial)`` batch with the drawn parameters in one ``grid_sample`` call."""
        if self._theta.shape[0] != batch.shape[0]:
            raise ValueError(f"drawn parameters are for {self._theta.shape[0]} items, got {batch.shape[0]}.")
        device, spatial = batch.device, batch.shape[2:]
        theta = torch.as_tensor(self._theta, dtype=torch.float32, device=device)
        grid = F.affine_grid(theta, [batch.shape[0], 1, *spatial], align_corners=False)
        coarse = torch.as_tensor(self._displacement, dtype=torch.float32, device=device)
        interp = "bilinear" if self.spatial_dims == 2 else "trilinear"
        smooth = F.interpolate(coarse, size=tuple(spatial), mode=interp, align_corners=True)
        grid = grid + smooth.movedim(1, -1)  # isotropic noise, so channel order is immaterial
        sample_mode = "bilinear" if mode == "trilinear" else mode  # grid_sample's "bilinear" is trilinear on 5D
        out = F.grid_sample(batch.float(), grid, mode=sample_mode, padding_mode="zeros", align_corners=False)
        if mode == "nearest" or batch.is_floating_point():
            out = out.to(batch.dtype)
        return out


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


def _as_plain_tensor(x: NdarrayOrTensor) -> torch.Tensor:
    """Array or (Meta)Tensor as a plain tensor on its device, so resampling does not touch meta data."""
    return convert_to_tensor(x, track_meta=False)


def _restore_type(out: torch.Tensor, like: NdarrayOrTensor) -> NdarrayOrTensor:
    """``out`` as ``like``'s type and device (a MetaTensor's meta data is copied), keeping ``out``'s dtype."""
    return convert_to_dst_type(out, like, dtype=out.dtype)[0]


class RandPairedAugment(RandomizableTransform):
    """:class:`RandMaskAugment` applied to an image and its label with one shared draw.

    A "strong" augmentation of real training pairs with exactly the deformation family and ranges that
    GenSeg's augmented masks get, so that plain training and GenSeg are compared on equal geometry.
    The image is resampled bilinearly (trilinearly in 3D), the label with nearest neighbours so its
    values stay exact. Both are channel-first ``(C, *spatial)`` or batched ``(B, C, *spatial)`` with equal
    spatial shape (channel counts may differ); each batch item draws its own deformation.

    Returns tensors: a MetaTensor input comes back as a MetaTensor with its meta data copied (the affine is
    not updated, the deformation is not recorded). The label keeps its dtype; a floating image keeps its
    dtype, an integer image comes back as float32. Regions moved in from outside become 0 in both, so
    images are best scaled to [0, 1] beforehand.

    Args:
        spatial_dims: 2 or 3.
        kwargs: ``prob``, ``flip_prob``, ``rotate_range``, ``scale_range``, ``translate_range``,
            ``shear_range``, ``elastic_magnitude``, ``elastic_grid``, as for :class:`RandMaskAugment`.
    """

    def __init__(self, spatial_dims: int, **kwargs) -> None:
        self.augment = RandMaskAugment(spatial_dims, **kwargs)
        RandomizableTransform.__init__(self, self.augment.prob)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        self.augment.set_random_state(seed, state)
        return super().set_random_state(seed, state)

    def randomize(self, batch_size: int) -> None:  # type: ignore[override]
        self.augment.randomize(batch_size)

    def __call__(  # type: ignore[override]
        self, image: NdarrayOrTensor, label: NdarrayOrTensor, randomize: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        img_t, lbl_t = _as_plain_tensor(image), _as_plain_tensor(label)
        d = self.augment.spatial_dims
        if img_t.ndim != lbl_t.ndim or img_t.ndim not in (d + 1, d + 2):
            raise ValueError(
                f"expected image and label of shape (C, *spatial) or (B, C, *spatial) with {d} spatial dims, "
                f"got shapes {tuple(img_t.shape)} and {tuple(lbl_t.shape)}."
            )
        batched = img_t.ndim == d + 2
        if img_t.shape[-d:] != lbl_t.shape[-d:] or (batched and img_t.shape[0] != lbl_t.shape[0]):
            raise ValueError(
                f"image and label must share batch size and spatial shape, got {tuple(img_t.shape)} and "
                f"{tuple(lbl_t.shape)}."
            )
        if randomize:
            self.randomize(img_t.shape[0] if batched else 1)
        img_out = self.augment(img_t, randomize=False, mode="bilinear")
        lbl_out = self.augment(lbl_t, randomize=False, mode="nearest")
        # tensors out; a MetaTensor comes back as one, with its meta data
        return (
            _restore_type(img_out, image) if isinstance(image, torch.Tensor) else img_out,
            _restore_type(lbl_out, label) if isinstance(label, torch.Tensor) else lbl_out,
        )


class RandPairedAugmentd(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`RandPairedAugment`: every key gets the same draw, each its own ``mode``.

    For ``LoadImaged``-style pipelines: values come back with the input's type (numpy, tensor or MetaTensor
    with its meta data copied).

    Args:
        keys: keys to deform, e.g. ``["image", "label"]``.
        spatial_dims: 2 or 3.
        mode: ``grid_sample`` interpolation per key ("bilinear" for images, "nearest" for labels), or one
            string for all keys.
        allow_missing_keys: don't raise for keys missing from the data.
        kwargs: deformation parameters as for :class:`RandMaskAugment`.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_dims: int,
        mode: str | Sequence[str] = ("bilinear", "nearest"),
        allow_missing_keys: bool = False,
        **kwargs,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.mode = ensure_tuple_rep(mode, len(self.keys))
        self.augment = RandMaskAugment(spatial_dims, **kwargs)
        RandomizableTransform.__init__(self, self.augment.prob)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        self.augment.set_random_state(seed, state)
        return super().set_random_state(seed, state)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        first = True
        for key, mode in self.key_iterator(d, self.mode):
            x = _as_plain_tensor(d[key])
            if first:
                self.augment.randomize(x.shape[0] if x.ndim == self.augment.spatial_dims + 2 else 1)
                first = False
            out = self.augment(x, randomize=False, mode=mode)
            d[key] = _restore_type(out, d[key])
        return d


__all__: Sequence[str] = ["RandMaskAugment", "RandMaskAugmentd", "RandPairedAugment", "RandPairedAugmentd"]
