"""Liver-like CT phantoms in MSD Task03 layout, so every default run works offline with no data.

Each case is an abdominal cross-section in Hounsfield units: air, an elliptical body with a
subcutaneous fat layer and a muscle wall, soft tissue, a vertebra, a smooth liver-shaped organ with
texture, and zero to three hypodense tumours inside it, plus scanner noise. Labels follow Task03:
0 background, 1 liver, 2 tumour. The NIfTI header carries the voxel spacing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

DEMO_VERSION = 1
DEFAULT_SHAPE = (80, 64, 40)
DEFAULT_SPACING = (4.0, 4.0, 5.0)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], coarse: int) -> np.ndarray:
    """Zero-mean, unit-variance 2D or 3D noise that varies smoothly over about shape/coarse pixels."""
    grid = torch.from_numpy(rng.standard_normal((1, 1, *[coarse] * len(shape))).astype(np.float32))
    mode = "bicubic" if len(shape) == 2 else "trilinear"
    field = F.interpolate(grid, size=tuple(shape), mode=mode, align_corners=True)[0, 0].numpy()
    return (field - field.mean()) / (field.std() + 1e-6)


def liver_phantom(
    rng: np.random.Generator, shape: tuple[int, int, int] = DEFAULT_SHAPE, spacing=DEFAULT_SPACING
) -> tuple[np.ndarray, np.ndarray]:
    """One phantom: (image in HU as int16, label as uint8), both of ``shape`` (x, y, z)."""
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]
    x, y, z = np.meshgrid(*axes, indexing="ij")  # mm from the centre; x left-right, y front-back
    a = rng.uniform(130, 155) * (1 + 0.05 * np.cos(z / 60))
    b = rng.uniform(95, 115) * (1 + 0.04 * np.sin(z / 50))
    r = np.sqrt((x / a) ** 2 + (y / b) ** 2)
    body, inside_fat, inside_muscle = r < 1.0, r < 1.0 - 15 / b, r < 1.0 - 25 / b

    image = np.full(shape, -1000.0)
    image[body] = -100.0  # subcutaneous fat
    image[inside_fat] = 50.0  # abdominal wall muscle
    image[inside_muscle] = 30.0 + 10.0 * smooth_noise(rng, shape, 6)[inside_muscle]  # bowel and soft tissue
    spine = (x**2 + (y - 0.6 * b) ** 2) < rng.uniform(15, 20) ** 2
    image[spine & inside_muscle] = 450.0

    # liver: a union of two ellipsoids on the patient's right and anterior, warped by smooth noise
    centre = np.array([-0.35 * a.mean(), -0.15 * b.mean(), rng.uniform(-15, 15)])
    radii = np.array([rng.uniform(65, 85), rng.uniform(50, 65), rng.uniform(60, 80)])
    lobe = centre + np.array([rng.uniform(45, 65), rng.uniform(-10, 10), rng.uniform(-10, 10)])
    lobe_radii = radii * np.array([0.6, 0.6, 0.7])
    d1 = sum(((c - m) / rr) ** 2 for c, m, rr in zip((x, y, z), centre, radii))
    d2 = sum(((c - m) / rr) ** 2 for c, m, rr in zip((x, y, z), lobe, lobe_radii))
    liver = (np.minimum(d1, d2) + 0.15 * smooth_noise(rng, shape, 5) < 1.0) & inside_muscle & ~spine
    image[liver] = rng.uniform(55, 70) + 6.0 * smooth_noise(rng, shape, 10)[liver]
    label = liver.astype(np.uint8)

    coords = np.argwhere(liver)
    for _ in range(rng.integers(0, 4) if len(coords) else 0):
        c = np.array([axes[i][v] for i, v in enumerate(coords[rng.integers(len(coords))])])
        rad = rng.uniform(6, 16, 3)
        tumour = (sum(((g - m) / rr) ** 2 for g, m, rr in zip((x, y, z), c, rad)) < 1.0) & liver
        image[tumour] = rng.uniform(15, 30) + 4.0 * smooth_noise(rng, shape, 8)[tumour]
        label[tumour] = 2

    image += rng.normal(0.0, 12.0, shape)
    return np.clip(image, -1024, 3071).astype(np.int16), label


def write_msd_demo(root: str | os.PathLike, cases, spacing, name: str, modality: str, labels: list[str]) -> Path:
    """Write (image, label) arrays as an MSD dataset under ``root``.

    The folder is assembled in a temporary sibling and renamed into place, so an interrupted run
    never leaves a half-written dataset behind. An existing ``root`` is never overwritten.
    """
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} already exists; the demo writer does not overwrite folders.")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        affine = np.diag([*spacing, 1.0])
        training = []
        for i, (image, label) in enumerate(cases):
            file = f"case_{i:03d}.nii.gz"
            nib.save(nib.Nifti1Image(image, affine), tmp / "imagesTr" / file)
            nib.save(nib.Nifti1Image(label, affine), tmp / "labelsTr" / file)
            training.append({"image": f"./imagesTr/{file}", "label": f"./labelsTr/{file}"})
        meta = {
            "name": name,
            "description": "Synthetic phantoms made by monai_genseg for demos and tests.",
            "tensorImageSize": "3D",
            "modality": {"0": modality},
            "labels": {str(i): n for i, n in enumerate(labels)},
            "numTraining": len(training),
            "training": training,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=4))
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def write_liver_demo(
    root: str | os.PathLike, num_cases: int = 48, seed: int = 0, shape=DEFAULT_SHAPE, spacing=DEFAULT_SPACING
) -> Path:
    """Write ``num_cases`` liver phantoms as an MSD dataset (``dataset.json``, ``imagesTr``, ``labelsTr``);
    atomic, never overwrites."""
    rng = np.random.default_rng(seed)
    cases = (liver_phantom(rng, tuple(shape), tuple(spacing)) for _ in range(num_cases))
    return write_msd_demo(
        root, cases, spacing, name="GenSegLiverPhantoms", modality="CT", labels=["background", "liver", "tumour"]
    )
