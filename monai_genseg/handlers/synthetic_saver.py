"""Save a few of the synthetic image/mask pairs the trainer made, to look at what the generator learnt."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events

from monai_genseg.handlers.stats import output_items


class SyntheticPairSaver:
    """Write up to ``max_pairs`` synthetic pairs from the trainer output (``synthetic_image``/``synthetic_label``).

    3D pairs are NIfTI with the real batch's affine (so they overlay in a viewer); 2D pairs are PNG.
    Files are named ``iter{N}_pair{K}_image`` / ``_mask``; nothing is written in baseline mode.

    Args:
        output_dir: folder for the files, created on demand.
        interval: iterations between saves; ``None`` saves only when training completes.
        max_pairs: how many pairs of the batch to save each time.
    """

    def __init__(self, output_dir: str | os.PathLike, interval: int | None = None, max_pairs: int = 4) -> None:
        self.output_dir = Path(output_dir)
        self.interval = interval
        self.max_pairs = max_pairs
        self.logger = logging.getLogger("SyntheticPairSaver")

    def attach(self, engine: Engine) -> None:
        if self.interval:
            engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self)
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        items = [i for i in output_items(engine.state.output) if i.get("synthetic_image") is not None][: self.max_pairs]
        if not items:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        it = engine.state.iteration
        for k, item in enumerate(items):
            affine = getattr(item.get("image"), "affine", None)  # the real item's geometry
            write_pair_item(
                item["synthetic_image"], item["synthetic_label"], self.output_dir / f"iter{it:06d}_pair{k}", affine
            )
        self.logger.info(f"saved {len(items)} synthetic pairs to {self.output_dir}")


def write_pair_item(image: torch.Tensor, mask: torch.Tensor, stem, affine=None, num_classes: int | None = None) -> None:
    """Write one synthetic pair as ``<stem>_image`` and ``<stem>_mask`` (NIfTI in 3D, PNG in 2D)."""
    _write(image, f"{stem}_image", affine, is_mask=False)
    _write(mask, f"{stem}_mask", affine, is_mask=True, num_classes=num_classes)


def _write(array: torch.Tensor, stem: str, affine, is_mask: bool, num_classes: int | None = None) -> None:
    data = array.detach().float().cpu().numpy()  # (C, *spatial)
    if data.ndim == 4:  # 3D: NIfTI, first channel, geometry from the affine
        import nibabel as nib

        vol = data[0].astype(np.uint8 if is_mask else np.float32)
        aff = np.eye(4) if affine is None else np.asarray(torch.as_tensor(affine).cpu(), dtype=np.float64)
        nib.save(nib.Nifti1Image(vol, aff), f"{stem}.nii.gz")
        return
    import SimpleITK as sitk

    if is_mask:  # 2D: PNG, labels spread over 0..255 so they are visible
        top = float(num_classes - 1) if num_classes else max(float(data.max()), 1.0)
        pixels = (data[0] * (255.0 / top)).round().astype(np.uint8)
        sitk.WriteImage(sitk.GetImageFromArray(pixels.T), f"{stem}.png")
        return
    pixels = (np.clip(data, 0, 1) * 255).round().astype(np.uint8)
    img = (
        sitk.GetImageFromArray(np.moveaxis(pixels, 0, -1).transpose(1, 0, 2), isVector=True)
        if pixels.shape[0] == 3
        else sitk.GetImageFromArray(pixels[0].T)
    )
    sitk.WriteImage(img, f"{stem}.png")
