"""Checks of a dataset before any model is built: every problem, one line each, naming the file."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np

from monai_genseg.data.datalist import seeded_order
from monai_genseg.data.sitk_reader import read_sitk, sitk_affine, sitk_array

logger = logging.getLogger(__name__)


# more distinct values than this, some outside the classes, and a "mask" is an image (a lossy 0/255 mask excepted)
MAX_MASK_VALUES = 32


def _mostly_binary(lab: np.ndarray) -> bool:
    """A lossy (JPEG) 0/255 mask: nearly every pixel near one of the two ends."""
    return float(np.mean((lab <= 32) | (lab >= 223))) >= 0.95


class DataCheckError(ValueError):
    """Raised with every problem found, one per line."""


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Volume:
    array: np.ndarray  # (C, *spatial)
    affine: np.ndarray


def read_volume(path: str) -> _Volume:
    """Read an image as channel-first ``(C, *spatial)`` with its affine; NIfTI by nibabel, the rest by SimpleITK."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ValueError("empty file (0 bytes)")
    if path.endswith((".nii", ".nii.gz")):
        img = nib.load(path)
        data = np.asarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=np.float64)
        # NIfTI axes 0-2 are space; any further axes (4th, or MSD's 5th) hold channels
        data = data[None] if data.ndim <= 3 else np.moveaxis(data.reshape(*data.shape[:3], -1), -1, 0)
        return _Volume(data, affine)
    img = read_sitk(path)
    data = sitk_array(img)
    data = np.moveaxis(data, -1, 0) if img.GetNumberOfComponentsPerPixel() > 1 else data[None]
    affine = sitk_affine(img)
    if affine.shape[0] == 3:  # 2D: embed in 4x4 so every affine compares alike
        affine = np.block(
            [
                [affine[:2, :2], np.zeros((2, 1)), affine[:2, 2:]],
                [np.zeros((1, 2)), np.ones((1, 1)), np.zeros((1, 1))],
                [np.zeros((1, 3)), np.ones((1, 1))],
            ]
        )
    return _Volume(data, affine)


def check_case(
    case: dict, spatial_dims: int, num_classes: int, image_channels: int, value_range: Sequence[float] | None = None
) -> CheckReport:
    """Every problem of one ``{image, label}`` case (or ``{image}`` alone, for inference).

    ``value_range``: the intensities the bundle's fixed window expects (8-bit photographs: 0..255); an image
    outside it (16 bits, floats in 0..1, Hounsfield units) would saturate or go black, so it is refused.
    """
    report = CheckReport()
    vols = {}
    for key in ("image", "label") if "label" in case else ("image",):
        path = case.get(key)
        if path is None:
            report.errors.append(f"{case}: no '{key}' entry")
            continue
        if not os.path.exists(path):
            report.errors.append(f"{path}: {key} file does not exist")
            continue
        try:
            vols[key] = read_volume(path)
        except Exception as e:  # any reader failure is reported the same way
            report.errors.append(f"{path}: cannot read {key} ({_reason(e)})")
    image, label = vols.get("image"), vols.get("label")
    for key, vol in vols.items():
        ndim = vol.array.ndim - 1
        if ndim != spatial_dims and not (
            ndim > spatial_dims and all(s == 1 for s in vol.array.shape[spatial_dims + 1 :])
        ):
            kind = f"{ndim}D" if ndim in (2, 3) else f"{ndim}-dimensional"
            report.errors.append(
                f"{case[key]}: {key} is {kind} {tuple(vol.array.shape[1:])} but this bundle is {spatial_dims}D"
            )
            vols[key] = None  # type: ignore[assignment]
    image, label = vols.get("image"), vols.get("label")
    photo = spatial_dims == 2  # 2D photographs: grey, RGB or RGBA images, and 0/255 masks, are converted on loading
    if image is not None:
        channels = image.array.shape[0]
        if channels != image_channels and not (photo and channels in (1, 3, 4)):
            report.errors.append(
                f"{case['image']}: image has {channels} channels, this bundle expects {image_channels}"
            )
        if np.issubdtype(image.array.dtype, np.floating) and not np.isfinite(image.array).all():
            report.errors.append(
                f"{case['image']}: image has {int((~np.isfinite(image.array)).sum())} NaN or Inf voxels"
            )
        if value_range is not None:
            _check_range(case["image"], image.array, value_range, report)
    if label is not None:
        _check_label(case["label"], label.array[:1] if photo else label.array, num_classes, photo, report)
    if image is not None and label is not None and image.array.ndim == label.array.ndim:
        if image.array.shape[1:] != label.array.shape[1:]:
            report.errors.append(
                f"{case['image']}: image shape {image.array.shape[1:]} differs from label shape "
                f"{label.array.shape[1:]} ({case['label']})"
            )
        elif not np.allclose(image.affine, label.affine, atol=1e-3, rtol=1e-4):
            report.errors.append(_geometry_difference(case, image.affine, label.affine, spatial_dims))
    return report


def _geometry_difference(case: dict, a: np.ndarray, b: np.ndarray, spatial_dims: int) -> str:
    """Which of spacing, direction and origin differ between image and label, with the values."""
    d = spatial_dims

    def spacing(m: np.ndarray) -> np.ndarray:
        return np.linalg.norm(m[:d, :d], axis=0)

    def show(values: np.ndarray, digits: int) -> tuple:
        return tuple(round(float(v), digits) for v in np.ravel(values))

    parts = []
    if not np.allclose(spacing(a), spacing(b), atol=1e-3, rtol=1e-4):
        parts.append(f"spacing {show(spacing(a), 4)} vs {show(spacing(b), 4)}")
    direction_a, direction_b = a[:d, :d] / spacing(a), b[:d, :d] / spacing(b)
    if not np.allclose(direction_a, direction_b, atol=1e-3):
        parts.append(f"direction {show(direction_a, 3)} vs {show(direction_b, 3)}: a flipped or swapped axis")
    if not np.allclose(a[:3, 3], b[:3, 3], atol=1e-3, rtol=1e-4):
        parts.append(f"origin {show(a[:3, 3], 3)} vs {show(b[:3, 3], 3)}")
    return f"{case['image']}: image and label geometry differ ({'; '.join(parts)}) ({case['label']})"


def _check_range(path: str, array: np.ndarray, value_range: Sequence[float], report: CheckReport) -> None:
    low, high = float(value_range[0]), float(value_range[1])
    if array.size == 0:
        return
    lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
    if hi > high:
        kind = (
            f"{array.dtype.itemsize * 8}-bit {array.dtype}"
            if np.issubdtype(array.dtype, np.integer)
            else str(array.dtype)
        )
        report.errors.append(
            f"{path}: {kind} image with values up to {hi:g}, but this bundle reads {low:g}..{high:g}: "
            f"{np.mean(array > high):.0%} of the pixels would saturate; convert it to 8 bits"
        )
    elif lo < low:
        report.errors.append(
            f"{path}: values down to {lo:g} (Hounsfield units?), but this bundle reads {low:g}..{high:g}; "
            "window and convert it to 8 bits"
        )
    elif np.issubdtype(array.dtype, np.floating) and hi <= 1.0 and high > 1.0 and hi > 0:
        report.errors.append(
            f"{path}: floating-point image within 0..1, but this bundle reads {low:g}..{high:g}: it would be "
            f"almost black; scale it to {low:g}..{high:g}"
        )


def _check_label(path: str, lab: np.ndarray, num_classes: int, photo: bool, report: CheckReport) -> None:
    if lab.shape[0] != 1:
        report.errors.append(f"{path}: label has {lab.shape[0]} channels, expected one label map")
        return
    if np.issubdtype(lab.dtype, np.floating) and (not np.isfinite(lab).all() or (lab != np.round(lab)).any()):
        report.errors.append(f"{path}: label has non-integer values (interpolated or lossy?)")
        return
    values = np.unique(lab)
    outside = (values < 0) | (values >= num_classes)
    if outside.any() and values.size > MAX_MASK_VALUES and not (photo and num_classes == 2 and _mostly_binary(lab)):
        report.errors.append(
            f"{path}: {values.size} distinct values ({values.min():g}..{values.max():g}): an image rather than a "
            f"mask? This bundle's labels are 0..{num_classes - 1}"
        )
        return
    if photo and num_classes == 2 and values.max(initial=0) > 1:
        if not set(values.tolist()) <= {0, 255}:
            report.warnings.append(f"{path}: lossy mask (values other than 0 and 255), thresholded at 128")
        values = np.unique(values >= 128)
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:5].tolist()) + (", ..." if bad.size > 5 else "")
        report.errors.append(f"{path}: label values {shown} outside this bundle's classes 0..{num_classes - 1}")
    elif values.max(initial=0) == 0:
        report.warnings.append(f"{path}: label is empty (background only)")


def check_masks(paths: Sequence[str], spatial_dims: int, num_classes: int) -> None:
    """Raise one error listing every file of ``paths`` that is not a label map this bundle can read: wrong
    dimension, values outside 0..num_classes-1, or an image given as a mask."""
    report = CheckReport()
    for path in paths:
        try:
            vol = read_volume(path)
        except Exception as e:
            report.errors.append(f"{path}: cannot read mask ({_reason(e)})")
            continue
        ndim = vol.array.ndim - 1
        if ndim != spatial_dims and not (
            ndim > spatial_dims and all(s == 1 for s in vol.array.shape[spatial_dims + 1 :])
        ):
            report.errors.append(
                f"{path}: mask is {ndim}D {tuple(vol.array.shape[1:])} but this bundle is {spatial_dims}D"
            )
            continue
        _check_label(path, vol.array[:1] if spatial_dims == 2 else vol.array, num_classes, spatial_dims == 2, report)
    if report.errors:
        raise DataCheckError(f"{len(report.errors)} problem(s) in the masks:\n" + "\n".join(report.errors))


def _reason(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def check_dataset(
    datalist: Sequence[dict],
    spatial_dims: int,
    num_classes: int,
    image_channels: int,
    num_required: int = 0,
    seed: int = 0,
    source: str = "the dataset",
    num_threads: int = 4,
    value_range: Sequence[float] | None = None,
) -> CheckReport:
    """Check the cases a run will use: the first ``num_required`` of the seeded order (all if 0).

    The count check and every case's problems are reported together.
    """
    report = CheckReport()
    if num_required and len(datalist) < num_required:
        report.errors.append(
            f"{source}: needs {num_required} labelled cases (num_labeled + num_val), found {len(datalist)}"
        )
    report.errors += _duplicates(datalist)
    used = [datalist[i] for i in seeded_order(len(datalist), seed)[: num_required or None]]
    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        for r in pool.map(lambda c: check_case(c, spatial_dims, num_classes, image_channels, value_range), used):
            report.errors += r.errors
            report.warnings += r.warnings
    return report


def _duplicates(datalist: Sequence[dict]) -> list[str]:
    """A file listed as two cases would sit in training and validation at once; an image given as its own label
    teaches nothing."""
    problems, seen = [], {}
    for i, case in enumerate(datalist):
        image, label = case.get("image"), case.get("label")
        if not isinstance(image, str):
            continue
        key = os.path.realpath(image)
        if key in seen:
            problems.append(
                f"{image}: listed twice (cases {seen[key]} and {i}): a case could be trained and validated on"
            )
        seen.setdefault(key, i)
        if isinstance(label, str) and os.path.realpath(label) == key:
            problems.append(f"{image}: the same file is given as image and as label")
    return problems


def require_valid_dataset(datalist: Sequence[dict], **kwargs) -> CheckReport:
    """:func:`check_dataset`, logging warnings (empty masks with a count) and raising one error listing every
    problem."""
    report = check_dataset(datalist, **kwargs)
    empty = [w for w in report.warnings if "label is empty" in w]
    if empty:
        logger.warning(f"{len(empty)} of the checked cases have empty labels:\n" + "\n".join(empty))
    if report.errors:
        raise DataCheckError(
            f"{len(report.errors)} problem(s) in {kwargs.get('source', 'the dataset')}:\n" + "\n".join(report.errors)
        )
    return report


__all__ = [
    "CheckReport",
    "DataCheckError",
    "check_case",
    "check_dataset",
    "check_masks",
    "read_volume",
    "require_valid_dataset",
]
