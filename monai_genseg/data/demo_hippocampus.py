"""Hippocampus-like MRI crops in MSD Task04 layout: two adjacent labelled structures in textured tissue."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from monai_genseg.data.demo_liver import smooth_noise, write_msd_demo

DEMO_VERSION = 1
SHAPE = (36, 48, 36)


def hippocampus_phantom(rng: np.random.Generator, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """One crop: (image as float32 MR intensities, label uint8: 1 anterior head, 2 posterior body/tail)."""
    x, y, z = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    image = 90 + 25 * smooth_noise(rng, shape, 6)  # grey and white matter
    image[smooth_noise(rng, shape, 8) > 1.2] = 20  # ventricle / CSF pockets
    bend = rng.uniform(-0.15, 0.15)
    axis_y = y - rng.uniform(-3, 3)
    curve_x, curve_z = x - bend * axis_y**2 / 4 - rng.uniform(-2, 2), z - rng.uniform(-2, 2)
    radius = np.where(axis_y < 0, rng.uniform(5, 7), rng.uniform(3, 4.5))  # a thick head, a thin tail
    tube = (curve_x**2 + curve_z**2 < radius**2) & (np.abs(axis_y) < rng.uniform(14, 18))
    label = np.where(tube, np.where(axis_y < 0, 1, 2), 0).astype(np.uint8)
    image[tube] = 70 + 6 * smooth_noise(rng, shape, 10)[tube]
    image += rng.normal(0, 6, shape)
    return np.clip(image, 0, None).astype(np.float32), label


def write_hippocampus_demo(root: str | os.PathLike, num_cases: int = 48, seed: int = 0) -> Path:
    """Write ``num_cases`` phantoms at 1 mm as an MSD dataset; atomic, never overwrites."""
    rng = np.random.default_rng(seed)
    return write_msd_demo(
        root,
        [hippocampus_phantom(rng) for _ in range(num_cases)],
        (1.0, 1.0, 1.0),
        name="GenSegHippocampusPhantoms",
        modality="MRI",
        labels=["background", "anterior", "posterior"],
    )


__all__ = ["hippocampus_phantom", "write_hippocampus_demo"]
