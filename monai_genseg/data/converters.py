"""Converters from public datasets' own layouts to the ``images/`` + ``masks/`` layout of the 2D bundles."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image


def _union(mask_files: list[Path]) -> np.ndarray:
    masks = [np.asarray(Image.open(f).convert("L")) >= 128 for f in mask_files]
    shapes = {m.shape for m in masks}
    if len(shapes) != 1:
        raise ValueError(f"masks of different sizes cannot be merged: {[str(f) for f in mask_files]}")
    return np.any(masks, axis=0)


def _eight_bit(image: Image.Image) -> Image.Image:
    """8-bit as the 2D bundles read it: 12/16-bit grey X-rays (Montgomery) scaled from their own range."""
    if image.mode in ("L", "RGB", "RGBA", "P", "LA"):
        return image
    array = np.asarray(image).astype(np.float64)
    low, high = float(array.min()), float(array.max())
    scaled = (array - low) / (high - low) * 255 if high > low else np.zeros_like(array)
    return Image.fromarray(np.round(scaled).astype(np.uint8))


def _write_pair(dst: Path, stem: str, image_file: Path, mask: np.ndarray) -> None:
    image = Image.open(image_file)
    if image.size != (mask.shape[1], mask.shape[0]):
        raise ValueError(
            f"{image_file}: image size {image.size} differs from its mask's {(mask.shape[1], mask.shape[0])}"
        )
    for sub in ("images", "masks"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
    for path in (dst / "images" / f"{stem}.png", dst / "masks" / f"{stem}.png"):
        if path.exists():
            raise FileExistsError(f"{path} exists; the converter does not overwrite files.")
    _eight_bit(image).save(dst / "images" / f"{stem}.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(dst / "masks" / f"{stem}.png")


def convert_busi(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """BUSI (``benign/benign (1).png`` with ``benign (1)_mask.png`` and, for a second lesion,
    ``benign (1)_mask_1.png``) to ``dst/images`` + ``dst/masks``; a case's lesion masks are merged.
    Returns the number of pairs written."""
    src, dst, count = Path(src), Path(dst), 0
    for image_file in sorted(src.rglob("*.png")):
        if "_mask" in image_file.stem:
            continue
        masks = sorted(image_file.parent.glob(f"{glob_escape(image_file.stem)}_mask*.png"))
        if not masks:
            raise FileNotFoundError(f"{image_file}: no {image_file.stem}_mask.png beside it")
        stem = re.sub(r"[^A-Za-z0-9]+", "_", image_file.stem).strip("_")
        _write_pair(dst, stem, image_file, _union(masks))
        count += 1
    return count


def convert_montgomery(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Montgomery County (``CXR_png/``, ``ManualMask/leftMask/``, ``ManualMask/rightMask/``) to
    ``dst/images`` + ``dst/masks`` with both lungs in one mask. Returns the number of pairs written."""
    src, dst, count = Path(src), Path(dst), 0
    for image_file in sorted((src / "CXR_png").glob("*.png")):
        sides = [src / "ManualMask" / side / image_file.name for side in ("leftMask", "rightMask")]
        missing = [str(s) for s in sides if not s.is_file()]
        if missing:
            raise FileNotFoundError(f"{image_file}: missing lung masks {missing}")
        _write_pair(dst, image_file.stem, image_file, _union(sides))
        count += 1
    return count


def glob_escape(text: str) -> str:
    """Escape glob metacharacters (BUSI names contain parentheses and spaces, brackets are the risk)."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)
