import pytest
import torch

from monai_genseg.networks import DOWN_OPS, UP_OPS, MaskToImageGenerator, one_hot_mask


@pytest.mark.parametrize("spatial_dims,size,labels,out", [(2, 32, 2, 3), (3, 16, 3, 1), (2, 64, 5, 1)])
def test_generator_maps_one_hot_mask_to_image_of_same_size(spatial_dims, size, labels, out):
    gen = MaskToImageGenerator(spatial_dims, labels, out, channels=(4, 8))
    mask = torch.randint(0, labels, (2, 1, *[size] * spatial_dims))
    image = gen(one_hot_mask(mask, labels))
    assert image.shape == (2, out, *[size] * spatial_dims)
    assert image.min() >= 0 and image.max() <= 1  # sigmoid output, images scaled to [0, 1]


def test_architecture_and_weight_parameters_partition_the_parameters():
    gen = MaskToImageGenerator(2, 2, 1, channels=(4, 8, 16))
    arch, weights = gen.arch_parameters(), gen.weight_parameters()
    assert len(arch) == 6  # 3 down + 3 up blocks
    assert all(a.shape == (3,) for a in arch)
    ids = {id(p) for p in arch} | {id(p) for p in weights}
    assert ids == {id(p) for p in gen.parameters()} and len(arch) + len(weights) == len(list(gen.parameters()))
    assert all(
        any(k.endswith("alpha") for k in [n]) for n, p in gen.named_parameters() if id(p) in {id(a) for a in arch}
    )


def test_alpha_is_saved_in_state_dict_and_genotype_follows_argmax():
    gen = MaskToImageGenerator(3, 2, 1, channels=(4, 8), down_ops=("conv3", "dilconv3"), up_ops=UP_OPS)
    with torch.no_grad():
        gen.down[1].alpha.copy_(torch.tensor([0.0, 2.0]))
        gen.up[0].alpha.copy_(torch.tensor([0.0, 0.0, 1.0]))
    assert gen.genotype() == ["down0:conv3", "down1:dilconv3", "up0:linear_conv3", "up1:deconv3"]
    fresh = MaskToImageGenerator(3, 2, 1, channels=(4, 8), down_ops=("conv3", "dilconv3"))
    fresh.load_state_dict(gen.state_dict())
    assert fresh.genotype() == gen.genotype()


def test_alpha_weights_the_candidates():
    """With one candidate's logit far above the others the block equals that candidate."""
    gen = MaskToImageGenerator(2, 2, 1, channels=(4,))
    x = one_hot_mask(torch.randint(0, 2, (1, 1, 16, 16)), 2)
    block = gen.down[0]
    with torch.no_grad():
        block.alpha.copy_(torch.tensor([-50.0, 50.0, -50.0]))
    torch.testing.assert_close(block(x), block.ops[1](x))


def test_bad_input_shape_is_explained():
    gen = MaskToImageGenerator(2, 3, 1, channels=(4, 8))
    with pytest.raises(ValueError, match="3 channels and spatial sizes divisible by 4"):
        gen(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match="unknown candidate"):
        MaskToImageGenerator(2, 3, 1, down_ops=("conv7",))
    assert set(DOWN_OPS).isdisjoint(UP_OPS)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_a_uniform_mask_gives_a_uniform_image_with_no_border_frame(spatial_dims):
    """Replicate padding: nothing marks the image border, so a constant mask maps to a constant image
    (interpolating up-sampling; the transposed conv candidate has a stride pattern of its own).

    In float64: instance norm of a constant map divides its rounding noise by sqrt(eps), and float32
    convolutions round differently at the border on some CPUs (2e-4 seen on an AMD EPYC), which is not a frame.
    """
    torch.manual_seed(0)
    mask = one_hot_mask(torch.ones(1, 1, *[16] * spatial_dims), 2).double()
    uniform = MaskToImageGenerator(
        spatial_dims, 2, 1, channels=(4, 8), up_ops=("nearest_conv3", "linear_conv3")
    ).double()
    image = uniform(mask)
    assert (image - image.mean()).abs().max() < 1e-5
    framed = MaskToImageGenerator(
        spatial_dims, 2, 1, channels=(4, 8), up_ops=("nearest_conv3", "linear_conv3"), padding_mode="zeros"
    ).double()
    framed.load_state_dict(uniform.state_dict())
    assert (framed(mask) - framed(mask).mean()).abs().max() > 1e-3  # zero padding marks the border
