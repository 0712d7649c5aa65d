"""Bring 2D photographs and masks to what a bundle expects: its number of image channels, and label indices."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform


class MatchChannels(Transform):
    """Convert a channel-first image to ``channels`` channels: drop an alpha channel, average RGB to grey,
    or repeat grey to RGB. Other counts are an error."""

    def __init__(self, channels: int) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}.")
        self.channels = channels

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        c = img.shape[0]
        if c == 4:  # RGBA
            img, c = img[:3], 3
        if c == self.channels:
            return img
        if c == 3 and self.channels == 1:
            return img.float().mean(0, keepdim=True)
        if c == 1 and self.channels == 3:
            return img.repeat(3, *[1] * (img.ndim - 1))
        raise ValueError(f"cannot convert an image with {c} channels to {self.channels}.")


class MaskToLabels(Transform):
    """A mask as one channel of label indices ``0..num_classes-1``.

    Multi-channel (RGB) masks use their first channel. Masks stored as 0/255, or lossy (JPEG) masks
    with values in between, are thresholded at 128 for binary tasks; label-index masks pass through.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def __call__(self, mask: torch.Tensor) -> torch.Tensor:
        mask = mask[:1]
        if mask.max() > self.num_classes - 1:
            if self.num_classes != 2:
                raise ValueError(
                    f"mask values up to {float(mask.max())} for {self.num_classes} classes: expected label indices."
                )
            mask = (mask >= 128).to(mask.dtype)
        return mask


class _ApplyPerKeyd(MapTransform):
    """Apply ``self.converter`` to each key: the dictionary form shared by this package's transforms."""

    converter: Transform

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
        return d


class MatchChannelsd(_ApplyPerKeyd):
    """Dictionary version of :class:`MatchChannels`."""

    def __init__(self, keys: KeysCollection, channels: int, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = MatchChannels(channels)


class MaskToLabelsd(_ApplyPerKeyd):
    """Dictionary version of :class:`MaskToLabels`."""

    def __init__(self, keys: KeysCollection, num_classes: int, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = MaskToLabels(num_classes)
