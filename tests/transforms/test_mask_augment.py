import numpy as np
import pytest
import torch

from monai_genseg.transforms import RandMaskAugment, RandMaskAugmentd


def _mask(spatial_dims, batch=None, size=32):
    m = torch.zeros(1, *[size] * spatial_dims)
    m[(slice(None),) + (slice(8, 24),) * spatial_dims] = 1
    m[(slice(None),) + (slice(12, 18),) * spatial_dims] = 2
    return m if batch is None else m.repeat(batch, *[1] * (spatial_dims + 1))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_labels_survive_and_shape_is_kept(spatial_dims):
    aug = RandMaskAugment(spatial_dims)
    aug.set_random_state(1)
    out = aug(_mask(spatial_dims, batch=4))
    assert out.shape == (4, 1, *[32] * spatial_dims)
    assert set(out.unique().tolist()) <= {0.0, 1.0, 2.0}
    assert not torch.equal(out, _mask(spatial_dims, batch=4)), "the masks were not deformed"
    assert not torch.equal(out[0], out[1]), "batch items share one deformation"


def test_unbatched_channel_first_input_and_prob_zero_is_identity():
    aug = RandMaskAugment(2, prob=0.0)
    m = _mask(2)
    assert torch.equal(aug(m), m)


def test_same_seed_same_masks():
    a, b = RandMaskAugment(3), RandMaskAugment(3)
    a.set_random_state(7), b.set_random_state(7)
    torch.testing.assert_close(a(_mask(3, batch=2)), b(_mask(3, batch=2)))


def test_dict_version_deforms_all_keys_alike():
    aug = RandMaskAugmentd(["label", "copy"], spatial_dims=2)
    aug.set_random_state(3)
    m = _mask(2)
    out = aug({"label": m, "copy": m.clone(), "other": 5})
    assert torch.equal(out["label"], out["copy"]) and out["other"] == 5


def test_integer_dtype_is_kept_and_wrong_rank_is_explained():
    aug = RandMaskAugment(2)
    out = aug(_mask(2).to(torch.uint8))
    assert out.dtype == torch.uint8
    with pytest.raises(ValueError, match="2 spatial dims"):
        aug(torch.zeros(32, 32))


def test_flip_only_mirrors():
    aug = RandMaskAugment(
        2, flip_prob=1.0, rotate_range=0, scale_range=(1, 1), translate_range=0, shear_range=0, elastic_magnitude=0
    )
    m = torch.from_numpy(np.arange(16.0).reshape(1, 4, 4))
    torch.testing.assert_close(aug(m), m.flip(1).flip(2))
