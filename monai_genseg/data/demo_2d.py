"""Synthetic 2D demo sets for the paper's 2D tasks, as ``images/`` + ``masks/`` PNG folders.

Each is a caricature of its modality, enough for a bundle to train and show its pipeline offline:
skin lesions (dermoscopy), breast lesions (ultrasound), polyps (colonoscopy), foot ulcers (photos),
placental vessels (fetoscopy) and lungs (chest X-ray). Masks are 0/255 like the public sets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from monai_genseg.data.demo_liver import smooth_noise

DEMO_VERSION = 1
SIZE = (96, 96)


def blob(rng: np.random.Generator, shape, centre, radius: float, wobble: float = 0.25) -> np.ndarray:
    """A star-shaped region whose radius varies smoothly with the angle."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    angle = np.arctan2(yy - centre[0], xx - centre[1])
    r = radius * (1 + sum(wobble / k * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in range(2, 6)))
    return np.hypot(yy - centre[0], xx - centre[1]) < r


def _rgb(base, shade: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(base, np.float32)[None, None] * shade[..., None], 0, 255)


def skin_lesion(rng):
    h, w = SIZE
    mask = blob(rng, SIZE, rng.uniform(0.35, 0.65, 2) * SIZE, rng.uniform(0.15, 0.3) * h)
    light = 1 + 0.08 * smooth_noise(rng, SIZE, 3) - 0.25 * ((np.mgrid[:h, :w] - h / 2) ** 2).sum(0) / (h * w)
    image = _rgb((225, 180, 160), light)
    texture = 0.6 + 0.15 * smooth_noise(rng, SIZE, 12)
    image[mask] = _rgb((120, 75, 55), texture)[mask]
    for _ in range(rng.integers(0, 4)):  # hairs
        y0, slope = rng.uniform(0, h), rng.uniform(-1, 1)
        xs = np.arange(w)
        ys = np.clip((y0 + slope * xs).astype(int), 0, h - 1)
        image[ys, xs] *= 0.3
    return image + rng.normal(0, 4, image.shape), mask


def breast_ultrasound(rng):
    h, w = SIZE
    depth = np.linspace(1.0, 0.5, h)[:, None]
    tissue = 110 * depth * (1 + 0.3 * smooth_noise(rng, SIZE, 5))
    centre = rng.uniform([0.35, 0.25], [0.6, 0.75]) * SIZE
    mask = blob(rng, SIZE, centre, rng.uniform(0.1, 0.2) * h, wobble=0.15)
    tissue[mask] *= 0.25
    cols = np.where(mask.any(0))[0]
    below = np.zeros(SIZE, bool)
    below[int(centre[0]) :, cols] = True
    tissue[below & ~mask] *= 0.6  # posterior acoustic shadow
    speckle = rng.rayleigh(1.0, SIZE) / 1.25
    return tissue * speckle, mask


def polyp(rng):
    h, w = SIZE
    mucosa = _rgb((200, 90, 80), 0.8 + 0.15 * smooth_noise(rng, SIZE, 6))
    centre = rng.uniform(0.3, 0.7, 2) * SIZE
    mask = blob(rng, SIZE, centre, rng.uniform(0.12, 0.25) * h, wobble=0.12)
    yy, xx = np.mgrid[:h, :w]
    dome = np.clip(1 - np.hypot(yy - centre[0], xx - centre[1]) / (0.3 * h), 0, 1)
    mucosa[mask] = _rgb((230, 140, 120), 0.8 + 0.3 * dome)[mask]
    glint = (np.hypot(yy - centre[0] + 3, xx - centre[1] + 3) < 2) & mask
    mucosa[glint] = 255
    vignette = 1 - 0.6 * (np.hypot(yy - h / 2, xx - w / 2) / (0.7 * h)) ** 2
    return mucosa * vignette[..., None] + rng.normal(0, 3, mucosa.shape), mask


def foot_ulcer(rng):
    skin = _rgb((200, 150, 120), 0.85 + 0.1 * smooth_noise(rng, SIZE, 4))
    mask = blob(rng, SIZE, rng.uniform(0.3, 0.7, 2) * SIZE, rng.uniform(0.08, 0.2) * SIZE[0], wobble=0.35)
    slough = smooth_noise(rng, SIZE, 10) > 0.8
    wound = np.where(
        slough[..., None],
        _rgb((210, 190, 110), np.ones(SIZE)),
        _rgb((170, 40, 45), 0.8 + 0.2 * smooth_noise(rng, SIZE, 14)),
    )
    skin[mask] = wound[mask]
    return skin + rng.normal(0, 4, skin.shape), mask


def placental_vessels(rng):
    h, w = SIZE
    image = _rgb((220, 120, 70), 0.85 + 0.15 * smooth_noise(rng, SIZE, 5))
    mask = np.zeros(SIZE, bool)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(rng.integers(2, 5)):  # wandering vessels with branches
        pos, heading, width = rng.uniform(0, 1, 2) * SIZE, rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 3.5)
        for _ in range(70):
            heading += rng.normal(0, 0.15)
            pos = pos + 1.5 * np.array([np.sin(heading), np.cos(heading)])
            mask |= np.hypot(yy - pos[0], xx - pos[1]) < width
    image[mask] = _rgb((120, 30, 35), 0.9 + 0.1 * smooth_noise(rng, SIZE, 8))[mask]
    return image + rng.normal(0, 5, image.shape), mask


def chest_xray(rng):
    h, w = SIZE
    yy, xx = np.mgrid[:h, :w]
    body = ((yy - h * 0.55) / (0.5 * h)) ** 2 + ((xx - w / 2) / (0.45 * w)) ** 2 < 1
    image = np.where(body, 170.0, 30.0) + 15 * smooth_noise(rng, SIZE, 6)
    mask = np.zeros(SIZE, bool)
    for side in (-1, 1):
        centre = (h * rng.uniform(0.45, 0.55), w / 2 + side * w * rng.uniform(0.18, 0.22))
        lung = ((yy - centre[0]) / (rng.uniform(0.28, 0.34) * h)) ** 2 + (
            (xx - centre[1]) / (rng.uniform(0.12, 0.15) * w)
        ) ** 2 < 1
        mask |= lung
    image[mask] = 70 + 12 * smooth_noise(rng, SIZE, 10)[mask]
    image += 60 * (np.abs(xx - w / 2) < 0.05 * w) * body  # spine
    for k in range(1, 7):  # ribs
        image += 18 * (np.abs(yy - (0.2 + 0.1 * k) * h - 0.15 * np.abs(xx - w / 2)) < 1.2) * body
    return image + rng.normal(0, 4, SIZE), mask


GENERATORS: dict[str, Callable] = {
    "skin_lesion2d": skin_lesion,
    "breast_us2d": breast_ultrasound,
    "polyp2d": polyp,
    "foot_ulcer2d": foot_ulcer,
    "placenta_vessel2d": placental_vessels,
    "lung_xray2d": chest_xray,
}


def write_2d_demo(root: str | os.PathLike, task: str, num_cases: int = 48, seed: int = 0) -> Path:
    """Write ``num_cases`` pairs of ``task`` to ``root/images`` and ``root/masks`` (PNG), atomically; never
    overwrites."""
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} already exists; the demo writer does not overwrite folders.")
    make = GENERATORS[task]
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        rng = np.random.default_rng(seed)
        for i in range(num_cases):
            image, mask = make(rng)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(tmp / "images" / f"{i:04d}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(tmp / "masks" / f"{i:04d}.png")
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
