import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, ScaleIntensityd

from monai_genseg.transforms import RandMaskAugment, RandPairedAugment, RandPairedAugmentd


def _label(spatial_dims, size=48, batch=None):
    """Off-centre ball of value 1 with a smaller ball of value 2 inside, channel-first (optionally batched).

    Off centre, so that flips and shifts move it well away from where it was.
    """
    coords = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * spatial_dims, indexing="ij"))
    radius = ((coords - 0.35 * size) ** 2).sum(0).sqrt()
    lbl = (radius < size / 4).to(torch.int64) + (radius < size / 8).to(torch.int64)
    lbl = lbl[None]
    return lbl if batch is None else lbl.repeat(batch, *[1] * (spatial_dims + 1))


def _agreement(image, label):
    return ((image > 0.5) == (label > 0)).float().mean().item()


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_labels_stay_exact_dtype_and_shape_kept(spatial_dims):
    aug = RandPairedAugment(spatial_dims)
    aug.set_random_state(0)
    lbl = _label(spatial_dims, batch=2)
    img = lbl.double() / 2
    img_out, lbl_out = aug(img, lbl)
    assert img_out.shape == img.shape and lbl_out.shape == lbl.shape
    assert img_out.dtype == torch.float64 and lbl_out.dtype == torch.int64
    assert set(lbl_out.unique().tolist()) <= {0, 1, 2}
    assert not torch.equal(lbl_out, lbl), "the label was not deformed"
    # bilinear image: intermediate values appear at the boundaries, nearest label: none
    assert len(img_out.unique()) > 3


def test_numpy_input_returns_tensors_and_uint8_label_is_kept():
    aug = RandPairedAugment(2)
    aug.set_random_state(1)
    lbl = _label(2).numpy().astype(np.uint8)
    img_out, lbl_out = aug(lbl.astype(np.float32), lbl)
    assert isinstance(img_out, torch.Tensor) and img_out.dtype == torch.float32
    assert isinstance(lbl_out, torch.Tensor) and lbl_out.dtype == torch.uint8


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_image_and_label_share_one_draw(spatial_dims, seed):
    lbl = _label(spatial_dims, batch=2)
    img = (lbl > 0).float()
    aug = RandPairedAugment(spatial_dims)
    aug.set_random_state(seed)
    img_out, lbl_out = aug(img, lbl)
    assert _agreement(img_out, lbl_out) >= 0.97


def test_separate_draws_do_not_align():
    """Control for the test above: images deformed with another seed disagree clearly with the labels."""
    worst = 1.0
    for spatial_dims in (2, 3):
        lbl = _label(spatial_dims, batch=2)
        img = (lbl > 0).float()
        a, b = RandPairedAugment(spatial_dims), RandPairedAugment(spatial_dims)
        a.set_random_state(0), b.set_random_state(1)
        _, lbl_out = a(img, lbl)
        img_out, _ = b(img, lbl)
        worst = min(worst, _agreement(img_out, lbl_out))
    assert worst < 0.85


def test_matches_the_mask_augment_geometry():
    """Same seed and keyword arguments: the paired label is exactly what RandMaskAugment gives the mask."""
    kwargs = {"rotate_range": 30.0, "elastic_magnitude": 0.03}
    paired, masks = RandPairedAugment(3, **kwargs), RandMaskAugment(3, **kwargs)
    paired.set_random_state(5), masks.set_random_state(5)
    lbl = _label(3, size=32, batch=2)
    assert torch.equal(paired(lbl.float(), lbl)[1], masks(lbl))


def test_dict_form_matches_array_form_and_is_reproducible():
    lbl = _label(2)
    img = lbl.float() / 2

    def run(seed):
        t = RandPairedAugmentd(["image", "label"], spatial_dims=2, mode=["bilinear", "nearest"])
        t.set_random_state(seed)
        return t({"image": img, "label": lbl, "meta": "kept"})

    arr = RandPairedAugment(2)
    arr.set_random_state(4)
    img_ref, lbl_ref = arr(img, lbl)
    out = run(4)
    assert out["meta"] == "kept"
    torch.testing.assert_close(out["image"], img_ref)
    assert torch.equal(out["label"], lbl_ref) and out["label"].dtype == torch.int64
    again, other = run(4), run(5)
    assert torch.equal(again["image"], out["image"]) and torch.equal(again["label"], out["label"])
    assert not torch.equal(other["label"], out["label"])


def test_dict_form_single_mode_and_numpy_type_given_back():
    t = RandPairedAugmentd(["a", "b"], spatial_dims=2, mode="nearest")
    t.set_random_state(2)
    lbl = _label(2).numpy()
    out = t({"a": lbl, "b": lbl.copy()})
    assert isinstance(out["a"], np.ndarray) and out["a"].dtype == lbl.dtype
    np.testing.assert_array_equal(out["a"], out["b"])


def test_prob_zero_is_identity():
    lbl = _label(3, size=32)
    img = lbl.float() / 2
    img_out, lbl_out = RandPairedAugment(3, prob=0.0)(img, lbl)
    assert torch.equal(img_out, img) and torch.equal(lbl_out, lbl)
    out = RandPairedAugmentd(["image", "label"], spatial_dims=3, prob=0.0)({"image": img, "label": lbl})
    assert torch.equal(out["image"], img) and torch.equal(out["label"], lbl)


def test_mismatched_pair_is_explained():
    aug = RandPairedAugment(2)
    with pytest.raises(ValueError, match="spatial shape"):
        aug(torch.zeros(1, 32, 32), torch.zeros(1, 32, 16))
    with pytest.raises(ValueError, match="2 spatial dims"):
        aug(torch.zeros(32, 32), torch.zeros(32, 32))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_compose_with_meta_tensors(spatial_dims):
    affine = torch.diag(torch.tensor([2.0] * spatial_dims + [1.0]))
    lbl = MetaTensor(_label(spatial_dims, size=32).to(torch.uint8), affine=affine, meta={"filename_or_obj": "x.nii"})
    img = MetaTensor((lbl > 0).float() * 100, affine=affine, meta={"filename_or_obj": "x.nii"})
    pipeline = Compose(
        [
            ScaleIntensityd("image"),
            RandPairedAugmentd(["image", "label"], spatial_dims=spatial_dims, mode=("bilinear", "nearest")),
        ]
    )
    pipeline.set_random_state(3)
    out = pipeline({"image": img, "label": lbl})
    for key in ("image", "label"):
        assert isinstance(out[key], MetaTensor)
        torch.testing.assert_close(out[key].affine, affine.double())
        assert out[key].meta["filename_or_obj"] == "x.nii"
    assert out["label"].dtype == torch.uint8 and set(out["label"].unique().tolist()) <= {0, 1, 2}
    assert out["image"].dtype == torch.float32 and out["image"].shape == img.shape
    assert _agreement(out["image"].as_tensor(), out["label"].as_tensor()) >= 0.97
