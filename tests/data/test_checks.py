"""Bad data is stopped before training, with every problem named in one message."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_genseg.data import DataCheckError, check_dataset, load_msd_datalist, require_valid_dataset

BUNDLE_CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "liver3d" / "configs"


def _save(path: Path, array, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(array), np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine), path)


def _good(root: Path, name: str, shape=(16, 16, 8)):
    image = np.random.default_rng(0).normal(0, 100, shape).astype(np.float32)
    label = np.zeros(shape, np.uint8)
    label[4:10, 4:10, 2:6] = 1
    _save(root / f"{name}_img.nii.gz", image)
    _save(root / f"{name}_lab.nii.gz", label)
    return {"image": str(root / f"{name}_img.nii.gz"), "label": str(root / f"{name}_lab.nii.gz")}


@pytest.fixture
def messy(tmp_path):
    """One good case and one case for each problem a user's data can have."""
    cases = {"good": _good(tmp_path, "good")}
    cases["missing"] = {"image": str(tmp_path / "nope.nii.gz"), "label": cases["good"]["label"]}
    truncated = _good(tmp_path, "truncated")
    raw = Path(truncated["image"]).read_bytes()
    Path(truncated["image"]).write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = truncated
    empty_file = _good(tmp_path, "zero")
    Path(empty_file["label"]).write_bytes(b"")
    cases["zero"] = empty_file
    shape = _good(tmp_path, "shape")
    _save(Path(shape["label"]), np.zeros((16, 16, 9), np.uint8))
    cases["shape"] = shape
    geometry = _good(tmp_path, "geometry")
    _save(
        Path(geometry["label"]), nib.load(geometry["label"]).get_fdata().astype(np.uint8), np.diag([1.0, 1.0, 3.0, 1.0])
    )
    cases["geometry"] = geometry
    values = _good(tmp_path, "values")
    lab = np.zeros((16, 16, 8), np.uint8)
    lab[0, 0, 0] = 7
    _save(Path(values["label"]), lab)
    cases["values"] = values
    lossy = _good(tmp_path, "lossy")
    _save(Path(lossy["label"]), np.full((16, 16, 8), 0.5, np.float32))
    cases["lossy"] = lossy
    blank = _good(tmp_path, "blank")
    _save(Path(blank["label"]), np.zeros((16, 16, 8), np.uint8))
    cases["blank"] = blank
    nan = _good(tmp_path, "nan")
    img = nib.load(nan["image"]).get_fdata().astype(np.float32)
    img[1, 1, 1] = np.nan
    _save(Path(nan["image"]), img)
    cases["nan"] = nan
    channels = _good(tmp_path, "channels")
    _save(Path(channels["image"]), np.zeros((16, 16, 8, 2), np.float32))
    cases["channels"] = channels
    flat = _good(tmp_path, "flat")
    _save(Path(flat["image"]), np.zeros((16, 16), np.float32))
    _save(Path(flat["label"]), np.zeros((16, 16), np.uint8))
    cases["flat"] = flat
    return cases


def test_every_problem_is_reported_at_once_naming_the_file(messy):
    report = check_dataset(
        list(messy.values()), spatial_dims=3, num_classes=3, image_channels=1, num_required=20, source="mydata"
    )
    text = "\n".join(report.errors)
    expect = {
        "count": "mydata: needs 20 labelled cases (num_labeled + num_val), found 12",
        "missing": "nope.nii.gz: image file does not exist",
        "truncated": "truncated_img.nii.gz: cannot read image",
        "zero": "zero_lab.nii.gz: cannot read label (empty file (0 bytes))",
        "shape": "differs from label shape (16, 16, 9)",
        "geometry": "geometry_img.nii.gz: image and label geometry differ (spacing (2.0, 2.0, 3.0) vs (1.0, 1.0, 3.0)",
        "values": "values_lab.nii.gz: label values 7 outside this bundle's classes 0..2",
        "lossy": "lossy_lab.nii.gz: label has non-integer values",
        "nan": "nan_img.nii.gz: image has 1 NaN or Inf voxels",
        "channels": "channels_img.nii.gz: image has 2 channels, this bundle expects 1",
        "flat": "flat_img.nii.gz: image is 2D (16, 16) but this bundle is 3D",
    }
    for what, line in expect.items():
        assert line in text, f"{what}: {line!r} not in\n{text}"
    assert not any("good_" in e for e in report.errors)
    assert f"{messy['blank']['label']}: label is empty (background only)" in report.warnings
    with pytest.raises(DataCheckError, match="problem\\(s\\) in mydata"):
        require_valid_dataset(list(messy.values()), spatial_dims=3, num_classes=3, image_channels=1, source="mydata")


def test_bundle_run_stops_on_bad_data_within_seconds_before_building_models(tmp_path, messy):
    entries = [
        {k: str(Path(v).relative_to(tmp_path)) for k, v in c.items()} for name, c in messy.items() if name != "missing"
    ]
    (tmp_path / "dataset.json").write_text(json.dumps({"training": entries}))
    start = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            str(BUNDLE_CONFIGS / "train.yaml"),
            f"--dataset_dir={tmp_path}",
            f"--bundle_root={tmp_path / 'out'}",
            "--num_labeled=7",
            "--num_val=4",
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
    )
    assert proc.returncode != 0
    assert "DataCheckError" in proc.stderr and "problem(s) in the training and validation cases" in proc.stderr
    assert "values_lab.nii.gz: label values 7" in proc.stderr and "nan_img.nii.gz" in proc.stderr
    assert time.time() - start < 60
    assert not (tmp_path / "out" / "models").exists()


def test_broken_dataset_json_is_explained(tmp_path):
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(ValueError, match="dataset.json: not valid JSON"):
        load_msd_datalist(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"numTraining": 3}))
    with pytest.raises(ValueError, match="has no 'training' list"):
        load_msd_datalist(tmp_path)


def test_gzip_of_garbage_is_an_unreadable_image(tmp_path):
    case = _good(tmp_path, "g")
    Path(case["image"]).write_bytes(gzip.compress(b"definitely not nifti" * 20))
    report = check_dataset([case], spatial_dims=3, num_classes=2, image_channels=1)
    assert len(report.errors) == 1 and "g_img.nii.gz: cannot read image" in report.errors[0]


def test_3d_volume_given_to_a_2d_bundle_and_image_only_cases(tmp_path):
    case = _good(tmp_path, "vol")
    report = check_dataset([case], spatial_dims=2, num_classes=2, image_channels=1)
    assert f"{case['image']}: image is 3D (16, 16, 8) but this bundle is 2D" in report.errors
    assert check_dataset([{"image": case["image"]}], spatial_dims=3, num_classes=2, image_channels=1).errors == []


def _png(path: Path, array: np.ndarray) -> str:
    from PIL import Image

    Image.fromarray(array).save(path)
    return str(path)


def test_images_outside_the_bundles_window_are_refused(tmp_path):
    """A 2D bundle scales 0..255 to [0, 1]: 16-bit, 0..1 float or Hounsfield images would saturate or go black."""
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    label = _png(tmp_path / "mask.png", mask)
    sixteen = _png(tmp_path / "sixteen.png", (np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16))
    eight = _png(tmp_path / "eight.png", (np.arange(32 * 32).reshape(32, 32) % 256).astype(np.uint8))
    unit = tmp_path / "unit.nii.gz"
    _save(unit, np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32), np.eye(4))
    hounsfield = tmp_path / "hu.nii.gz"
    _save(hounsfield, np.linspace(-1000, 200, 32 * 32, dtype=np.float32).reshape(32, 32), np.eye(4))
    flat_label = tmp_path / "mask.nii.gz"
    _save(flat_label, (mask > 0).astype(np.uint8), np.eye(4))
    cases = [
        {"image": sixteen, "label": label},
        {"image": eight, "label": label},
        {"image": str(unit), "label": str(flat_label)},
        {"image": str(hounsfield), "label": str(flat_label)},
    ]
    report = check_dataset(cases, spatial_dims=2, num_classes=2, image_channels=1, value_range=(0, 255))
    text = "\n".join(report.errors)
    assert "sixteen.png: 16-bit uint16 image with values up to 61380" in text and "convert it to 8 bits" in text
    assert "unit.nii.gz: floating-point image within 0..1" in text
    assert "hu.nii.gz: values down to -1000 (Hounsfield units?)" in text
    assert "eight.png" not in text and len(report.errors) == 3
    # without a fixed window (an MR bundle normalises per volume) the same files pass
    assert not check_dataset(cases[2:3], spatial_dims=2, num_classes=2, image_channels=1).errors


def test_duplicates_and_an_image_given_as_its_own_label_are_refused(tmp_path):
    a, b = _good(tmp_path, "a"), _good(tmp_path, "b")
    twice = {"image": str(tmp_path / "." / "a_img.nii.gz"), "label": a["label"]}  # the same file, spelt otherwise
    itself = {"image": b["image"], "label": b["image"]}
    report = check_dataset([a, b, twice, itself], spatial_dims=3, num_classes=3, image_channels=1)
    text = "\n".join(report.errors)
    assert "a_img.nii.gz: listed twice (cases 0 and 2)" in text
    assert "b_img.nii.gz: listed twice" in text and "the same file is given as image and as label" in text


def test_a_direction_mismatch_is_named_as_such(tmp_path):
    case = _good(tmp_path, "flip")
    flipped = np.diag([-2.0, 2.0, 3.0, 1.0])  # same spacing and origin, first axis reversed
    _save(Path(case["label"]), nib.load(case["label"]).get_fdata().astype(np.uint8), flipped)
    (error,) = check_dataset([case], spatial_dims=3, num_classes=3, image_channels=1).errors
    assert "geometry differ (direction" in error and "a flipped or swapped axis" in error
    assert "spacing" not in error and "origin" not in error  # only what differs is shown


def test_an_image_given_as_a_mask_is_named(tmp_path):
    case = _good(tmp_path, "mri")
    image = nib.load(case["image"]).get_fdata()
    _save(Path(case["label"]), np.clip(image, 0, 250).astype(np.uint8))
    (error,) = check_dataset([case], spatial_dims=3, num_classes=3, image_channels=1).errors
    assert "mri_lab.nii.gz:" in error and "an image rather than a mask?" in error
