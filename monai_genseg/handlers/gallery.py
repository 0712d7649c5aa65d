"""A PNG gallery of what the generator makes of real masks, to watch it learn."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events
from PIL import Image

from monai_genseg.handlers.stats import output_items
from monai_genseg.networks import one_hot_mask


def _middle(x: torch.Tensor) -> np.ndarray:
    """(C, *spatial) to an (H, W, 3) picture in [0, 1]: the middle axial slice in 3D, grey repeated to RGB."""
    x = x.detach().float().cpu()
    if x.ndim == 4:
        x = x[..., x.shape[-1] // 2]
    x = x[:3] if x.shape[0] >= 3 else x[:1].repeat(3, 1, 1)
    return x.permute(2, 1, 0).numpy()[::-1]  # (x, y) index order to image rows/cols, y up


class SyntheticGallery:
    """Every ``interval`` iterations, write ``gallery_iterNNNNNN.png``: one row per batch item (up to
    ``max_rows``) with the real mask, the generator's image of that mask, and the real image. Nothing is
    written in baseline mode, where the generator is neither trained nor used: its pictures would be noise.

    Args:
        generator: the :class:`MaskToImageGenerator` being trained.
        num_classes: labels including background (to one-hot the mask and to scale it for display).
        output_dir: folder for the PNG files.
        interval: iterations between pictures.
        max_rows: batch items per picture.
    """

    def __init__(
        self, generator, num_classes: int, output_dir: str | os.PathLike, interval: int = 50, max_rows: int = 4
    ) -> None:
        self.generator = generator
        self.num_classes = num_classes
        self.output_dir = Path(output_dir)
        self.interval = interval
        self.max_rows = max_rows
        self.logger = logging.getLogger("SyntheticGallery")

    def attach(self, engine: Engine) -> None:
        facts = getattr(engine, "facts", None)  # a GenSegTrainer's mode
        if facts is not None and not facts.synthetic:
            return
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self)

    def __call__(self, engine: Engine) -> None:
        items = output_items(engine.state.output)[: self.max_rows]
        image, label = torch.stack([i["image"] for i in items]), torch.stack([i["label"] for i in items])
        with torch.no_grad():
            fake = self.generator(one_hot_mask(label, self.num_classes).to(image.device))
        rows = [
            np.concatenate([_middle(m / (self.num_classes - 1)), _middle(f), _middle(r)], axis=1)
            for m, f, r in zip(label, fake, image)
        ]
        picture = (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255).astype(np.uint8)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"gallery_iter{engine.state.iteration:06d}.png"
        Image.fromarray(picture).save(path)
        self.logger.info(f"saved {path}")
