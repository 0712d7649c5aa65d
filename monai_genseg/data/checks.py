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


def check_case(case: dict, spatial_dims: int, num_classes: int, image_channels: int) -> CheckReport:
    """Every problem of one ``{image, label}`` case (or ``{image}`` alone, for inference)."""
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
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            report.errors.append(f"{path}: cannot read {key} ({reason})")
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
    if label is not None:
        _check_label(case["label"], label.array[:1] if photo else label.array, num_classes, photo, report)
    if image is not None and label is not None and image.array.ndim == label.array.ndim:
        if image.array.shape[1:] != label.array.shape[1:]:
            report.errors.append(
                f"{case['image']}: image shape {image.array.shape[1:]} differs from label shape "
                f"{label.array.shape[1:]} ({case['label']})"
            )
        elif not np.allclose(image.affine, label.affine, atol=1e-3, rtol=1e-4):

            def spacing(a: np.ndarray) -> tuple[float, ...]:
                return tuple(round(float(v), 4) for v in np.linalg.norm(a[:spatial_dims, :spatial_dims], axis=0))

            report.errors.append(
                f"{case['image']}: image and label geometry differ "
                f"(spacing {spacing(image.affine)} vs {spacing(label.affine)}, "
                f"origin {np.round(image.affine[:3, 3], 3).tolist()} vs {np.round(label.affine[:3, 3], 3).tolist()})"
            )
    return report


def _check_label(path: str, lab: np.ndarray, num_classes: int, photo: bool, report: CheckReport) -> None:
    if lab.shape[0] != 1:
        report.errors.append(f"{path}: label has {lab.shape[0]} channels, expected one label map")
        return
    if np.issubdtype(lab.dtype, np.floating) and (not np.isfinite(lab).all() or (lab != np.round(lab)).any()):
        report.errors.append(f"{path}: label has non-integer values (interpolated or lossy?)")
        return
    values = np.unique(lab)
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


def check_dataset(
    datalist: Sequence[dict],
    spatial_dims: int,
    num_classes: int,
    image_channels: int,
    num_required: int = 0,
    seed: int = 0,
    source: str = "the dataset",
    num_threads: int = 4,
) -> CheckReport:
    """Check the cases a run will use: the first ``num_required`` of the seeded order (all if 0).

    The count check and every case's problems are reported together.
    """
    report = CheckReport()
    if num_required and len(datalist) < num_required:
        report.errors.append(
            f"{source}: needs {num_required} labelled cases (num_labeled + num_val), found {len(datalist)}"
        )
    used = [datalist[i] for i in seeded_order(len(datalist), seed)[: num_required or None]]
    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        for r in pool.map(lambda c: check_case(c, spatial_dims, num_classes, image_channels), used):
            report.errors += r.errors
            report.warnings += r.warnings
    return report


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


__all__ = ["CheckReport", "DataCheckError", "check_case", "check_dataset", "read_volume", "require_valid_dataset"]
