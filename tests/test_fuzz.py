"""Property-based tests: odd inputs to the loaders, the data checks and the mask augmentation
must give a result or a clear error, never a crash or a hang."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monai_genseg.data import check_dataset, liver_phantom, load_msd_datalist
from monai_genseg.data.checks import check_case
from monai_genseg.networks import one_hot_mask
from monai_genseg.transforms import RandMaskAugment

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

dims = st.sampled_from([2, 3])


@FAST
@given(
    spatial_dims=dims,
    sizes=st.lists(st.integers(1, 9), min_size=3, max_size=3),
    batch=st.integers(1, 3),
    labels=st.integers(1, 40),
    fill=st.sampled_from(["zeros", "ones", "random"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_mask_augment_keeps_labels_on_any_shape(spatial_dims, sizes, batch, labels, fill, seed):
    shape = (batch, 1, *sizes[:spatial_dims])
    rng = torch.Generator().manual_seed(seed)
    mask = {
        "zeros": torch.zeros(shape),
        "ones": torch.ones(shape),
        "random": torch.randint(0, labels, shape, generator=rng).float(),
    }[fill]
    aug = RandMaskAugment(spatial_dims)
    aug.set_random_state(seed)
    out = aug(mask)
    assert out.shape == mask.shape
    assert set(out.unique().tolist()) <= set(mask.unique().tolist()) | {0.0}
    assert one_hot_mask(out, labels).shape[1] == labels


@FAST
@given(payload=st.binary(min_size=0, max_size=2048), suffix=st.sampled_from([".nii.gz", ".nii", ".png", ".mha"]))
def test_random_bytes_are_reported_as_unreadable(payload, suffix):
    with tempfile.TemporaryDirectory() as d:
        image, label = Path(d) / f"img{suffix}", Path(d) / f"lab{suffix}"
        image.write_bytes(payload)
        label.write_bytes(payload)
        report = check_case({"image": str(image), "label": str(label)}, spatial_dims=3, num_classes=3, image_channels=1)
        assert report.errors or report.warnings or payload  # a verdict, not an exception
        assert all(str(image) in e or str(label) in e for e in report.errors)


@FAST
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
    spacing=st.tuples(*[st.floats(1e-4, 1e4, allow_nan=False)] * 3),
    labels=st.integers(0, 300),
)
def test_checks_accept_odd_geometry_and_many_labels(shape, spacing, labels):
    with tempfile.TemporaryDirectory() as d:
        affine = np.diag([*spacing, 1.0])
        lab = np.full(shape, labels, dtype=np.int16)
        nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), affine), f"{d}/i.nii.gz")
        nib.save(nib.Nifti1Image(lab, affine), f"{d}/l.nii.gz")
        report = check_dataset(
            [{"image": f"{d}/i.nii.gz", "label": f"{d}/l.nii.gz"}], spatial_dims=3, num_classes=3, image_channels=1
        )
        assert bool(report.errors) == (labels > 2)
        assert bool(report.warnings) == (labels == 0)


@FAST
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=5),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
            max_leaves=8,
        ),
    )
)
def test_any_dataset_json_loads_or_is_explained(content):
    with tempfile.TemporaryDirectory() as d:
        raw = content if isinstance(content, bytes) else json.dumps(content).encode()
        (Path(d) / "dataset.json").write_bytes(raw)
        try:
            items = load_msd_datalist(d, check_files=False)
        except (ValueError, FileNotFoundError) as e:
            assert "dataset.json" in str(e)
        else:
            assert all(set(i) <= {"image", "label"} for i in items)


@settings(max_examples=10, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12)),
    spacing=st.tuples(*[st.floats(0.01, 500)] * 3),
    seed=st.integers(0, 1000),
)
def test_phantom_generator_handles_any_size(shape, spacing, seed):
    image, label = liver_phantom(np.random.default_rng(seed), shape, spacing)
    assert image.shape == label.shape == shape and set(np.unique(label)) <= {0, 1, 2}
