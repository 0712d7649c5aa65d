"""The segmenter (nnU-Net's U-Net through MONAI's DynUNet) and the loss on its deep-supervised output."""

import pytest
import torch
from monai.losses import DiceCELoss

from monai_genseg.losses import DeepSupervisedLoss
from monai_genseg.networks import segmenter


def test_training_output_stacks_the_heads_full_resolution_first_and_eval_gives_the_logits():
    torch.manual_seed(0)
    net = segmenter(3, 1, 3, (4, 8, 16, 32))
    x = torch.rand(2, 1, 16, 24, 16)
    stacked = net.train()(x)
    assert stacked.shape == (2, 3, 3, 16, 24, 16)  # the output and 2 heads, each at full resolution
    logits = net.eval()(x)
    assert logits.shape == (2, 3, 16, 24, 16)
    # instance norm keeps no running statistics: in training, the first of the stack is the same logits
    assert torch.allclose(net.train()(x)[:, 0], logits, atol=1e-5)


def test_deep_supervision_off_keeps_the_weights_interchangeable():
    on, off = segmenter(2, 1, 2, (4, 8, 16)), segmenter(2, 1, 2, (4, 8, 16), deep_supervision=False)
    off.load_state_dict(on.state_dict())  # strict: a model trained either way loads into the other
    assert off.train()(torch.rand(1, 1, 32, 32)).shape == (1, 2, 32, 32)


def test_the_loss_weights_the_heads_one_half_one_quarter_normalised():
    base = DiceCELoss(to_onehot_y=True, softmax=True)
    loss = DeepSupervisedLoss(base)
    torch.manual_seed(0)
    stacked, target = torch.randn(2, 3, 3, 8, 8), torch.randint(0, 3, (2, 1, 8, 8))
    parts = [base(stacked[:, i], target) for i in range(3)]
    expected = (parts[0] + parts[1] / 2 + parts[2] / 4) / 1.75
    assert torch.allclose(loss(stacked, target), expected)
    assert torch.allclose(loss(stacked[:, 0], target), parts[0])  # plain logits: the loss alone


def test_the_heads_learn_only_with_deep_supervision():
    x, y = torch.rand(1, 1, 16, 16, 16), torch.randint(0, 2, (1, 1, 16, 16, 16))
    loss = DeepSupervisedLoss(DiceCELoss(to_onehot_y=True, softmax=True))
    for flag in (True, False):
        net = segmenter(3, 1, 2, (4, 8, 16, 32), deep_supervision=flag)
        loss(net(x), y).backward()
        heads = [p.grad for n, p in net.named_parameters() if "super_head" in n]
        assert heads and all((g is not None and g.abs().sum() > 0) == flag for g in heads)


def test_too_shallow_a_segmenter_is_refused_with_its_widths():
    with pytest.raises(ValueError, match=r"\[4, 8\]: a segmenter needs at least 3 levels"):
        segmenter(2, 1, 2, (4, 8))
