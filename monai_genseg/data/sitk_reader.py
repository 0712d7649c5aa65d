"""A MONAI ``ImageReader`` backed by SimpleITK, so 3D bundles read NRRD, MHA/MHD and DICOM series
folders without the (large) ``itk`` package. NIfTI stays with MONAI's nibabel reader.

SimpleITK is imported when a file is first read, so NIfTI-only work never loads it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from monai.data import ImageReader
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple

if TYPE_CHECKING:
    import SimpleITK as sitk

SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


def read_sitk(path: str | os.PathLike) -> sitk.Image:
    """Read an image file, or the (first) DICOM series in a folder."""
    import SimpleITK as sitk

    path = str(path)
    if os.path.isdir(path):
        series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(path)
        if not series:
            raise ValueError(f"{path}: folder holds no DICOM series")
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(path, series[0]))
        return reader.Execute()
    return sitk.ReadImage(path)


def sitk_array(img: sitk.Image) -> np.ndarray:
    """Voxels with spatial axes in index order (x, y[, z]) and channels, if any, last."""
    import SimpleITK as sitk

    data = sitk.GetArrayFromImage(img)
    spatial = img.GetDimension()
    order = list(range(spatial))[::-1] + list(range(spatial, data.ndim))
    return np.transpose(data, order)


def sitk_affine(img: sitk.Image, lps_to_ras: bool = True) -> np.ndarray:
    """4x4 (or 3x3 in 2D) affine from direction, spacing and origin; RAS like MONAI's other readers."""
    dim = img.GetDimension()
    affine = np.eye(dim + 1)
    affine[:dim, :dim] = np.asarray(img.GetDirection()).reshape(dim, dim) @ np.diag(img.GetSpacing())
    affine[:dim, dim] = img.GetOrigin()
    if lps_to_ras:
        flip = np.diag([-1.0, -1.0] + [1.0] * (dim - 1))
        affine = flip @ affine
    return affine


class SimpleITKReader(ImageReader):
    """Load NRRD, MHA/MHD, single DICOM files or DICOM series folders with SimpleITK.

    Args:
        affine_lps_to_ras: convert the ITK (LPS) affine to RAS, as MONAI's readers do by default.
    """

    def __init__(self, affine_lps_to_ras: bool = True, **kwargs) -> None:
        super().__init__()
        self.affine_lps_to_ras = affine_lps_to_ras

    def verify_suffix(self, filename: Sequence[os.PathLike] | os.PathLike) -> bool:
        return all(os.path.isdir(f) or str(f).lower().endswith(SUFFIXES) for f in ensure_tuple(filename))

    def read(self, data: Sequence[os.PathLike] | os.PathLike, **kwargs):
        images = [read_sitk(f) for f in ensure_tuple(data)]
        return images if len(images) > 1 else images[0]

    def get_data(self, img) -> tuple[np.ndarray, dict]:
        arrays, meta = [], {}
        for image in img if isinstance(img, (list, tuple)) else [img]:  # an sitk.Image is itself iterable
            data = sitk_array(image)
            spatial = image.GetDimension()
            header = {
                "spacing": np.asarray(image.GetSpacing()),
                MetaKeys.ORIGINAL_AFFINE: sitk_affine(image, self.affine_lps_to_ras),
                MetaKeys.SPACE: SpaceKeys.RAS if self.affine_lps_to_ras else SpaceKeys.LPS,
                MetaKeys.SPATIAL_SHAPE: np.asarray(data.shape[:spatial]),
                MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan") if data.ndim == spatial else -1,
            }
            header[MetaKeys.AFFINE] = header[MetaKeys.ORIGINAL_AFFINE].copy()
            arrays.append(data)
            meta = meta or header
        if len(arrays) > 1:
            meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
            return np.stack(arrays), meta
        return arrays[0], meta
