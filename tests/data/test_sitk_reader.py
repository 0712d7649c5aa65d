"""3D bundles read NRRD, MHA and DICOM series like NIfTI: same voxels, same RAS geometry."""

import shutil

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from monai.transforms import LoadImage

from monai_genseg.data import SimpleITKReader, check_dataset


@pytest.fixture
def volume(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 1000, (5, 6, 7)).astype(np.int16)  # numpy (z, y, x)
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((0.8, 0.9, 2.5))
    img.SetOrigin((10.0, -20.0, 30.0))
    sitk.WriteImage(img, str(tmp_path / "vol.nii.gz"))
    sitk.WriteImage(img, str(tmp_path / "vol.nrrd"))
    sitk.WriteImage(img, str(tmp_path / "vol.mha"))
    series = tmp_path / "dicom"
    series.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()  # else every slice gets its own series UID
    for z in range(array.shape[0]):
        sl = img[:, :, z]
        sl.SetMetaData("0020|0032", "\\".join(str(v) for v in img.TransformIndexToPhysicalPoint((0, 0, z))))
        sl.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        sl.SetMetaData("0020|0013", str(z + 1))
        sl.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1")
        sl.SetMetaData("0028|0030", "0.9\\0.8")
        sl.SetMetaData("0018|0050", "2.5")
        sl.SetMetaData("0008|0018", f"1.2.826.0.1.3680043.2.1125.1.{z + 1}")
        writer.SetFileName(str(series / f"{z:03d}.dcm"))
        writer.Execute(sl)
    return tmp_path


@pytest.mark.parametrize("name", ["vol.nrrd", "vol.mha", "dicom"])
def test_formats_load_like_nifti(volume, name):
    reference = LoadImage(image_only=True)(str(volume / "vol.nii.gz"))
    loaded = LoadImage(image_only=True, reader=SimpleITKReader)(str(volume / name))
    assert tuple(loaded.shape) == tuple(reference.shape) == (7, 6, 5)
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(reference))
    np.testing.assert_allclose(np.asarray(loaded.affine), np.asarray(reference.affine), atol=1e-3)
    np.testing.assert_allclose(
        np.asarray(nib.load(volume / "vol.nii.gz").affine), np.asarray(reference.affine), atol=1e-3
    )


def test_nifti_still_goes_to_nibabel_and_checks_read_every_format(volume):
    assert not SimpleITKReader().verify_suffix(str(volume / "vol.nii.gz"))
    labels = volume / "labels"  # copies: one file given as image and label is refused (a user's mistake)
    labels.mkdir()
    for n in ("vol.nrrd", "vol.mha"):
        shutil.copy(volume / n, labels / n)
    shutil.copytree(volume / "dicom", labels / "dicom")
    cases = [{"image": str(volume / n), "label": str(labels / n)} for n in ("vol.nrrd", "vol.mha", "dicom")]
    report = check_dataset(cases, spatial_dims=3, num_classes=1000, image_channels=1)
    assert report.errors == []
