"""The segmenter: MONAI's DynUNet laid out as nnU-Net's plain U-Net, sized by a preset's widths.

Why not MONAI's ``UNet``: its first layer already downsamples, so at full resolution it has only the
output convolution (3 channels for the hippocampus), and the structures this project segments are
small (a hippocampus is about 14 voxels across). DynUNet keeps two 3x3 convolutions at every level,
full resolution included, and has output heads on its lower decoder levels for deep supervision.
On 8 hippocampus cases it scored higher than the UNet in the same 15 minutes on a CPU, in fewer
(costlier) steps (docs/study/planned_default_runs.csv).
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import DynUNet
from monai.networks.nets.dynunet import DynUNetSkipLayer

ALIASES = ("input_block", "downsamples", "bottleneck", "upsamples", "deep_supervision_heads")
MAX_HEADS = 2  # deep supervision at the two decoder levels below full resolution (x1/2, x1/4), as nnU-Net


class _SkipLayer(DynUNetSkipLayer):
    """DynUNet's skip layer, its forward written so that TorchScript can compile it: the heads list is narrowed
    from Optional through a local (MONAI's own reads the attribute twice, which TorchScript refuses). The heads
    run in training only: evaluation and inference never read them."""

    def forward(self, x):
        downout = self.downsample(x)
        nextout = self.next_layer(downout)
        upout = self.upsample(nextout, downout)
        heads = self.heads
        if self.training and self.super_head is not None and heads is not None and self.index > 0:
            heads[self.index - 1] = self.super_head(upout)
        return upout


def _supervision_heads(levels: int) -> int:
    """How many lower-resolution heads a ``levels``-deep segmenter has (DynUNet needs fewer than its up-steps)."""
    return max(0, min(MAX_HEADS, levels - 2))


def segmenter(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: Sequence[int],
    deep_supervision: bool = True,
) -> DynUNet:
    """A U-Net with ``len(channels)`` levels of the given widths: 3x3 convolutions, stride-2 downsampling,
    instance norm and leaky ReLU (nnU-Net's defaults).

    The supervision heads are always built, so the weights are the same whether or not they are trained;
    ``deep_supervision`` only says whether the network, in training mode, returns the heads' logits too:
    a tensor ``(batch, 1 + heads, classes, *spatial)``, full resolution first, that
    :class:`monai_genseg.losses.DeepSupervisedLoss` reads. In eval mode it returns the full-resolution logits.
    """
    levels = len(channels)
    if levels < 3:
        raise ValueError(f"segmenter channels {list(channels)}: a segmenter needs at least 3 levels (widths)")
    heads = _supervision_heads(levels)
    net = DynUNet(
        spatial_dims,
        in_channels,
        out_channels,
        kernel_size=[3] * levels,
        strides=[1] + [2] * (levels - 1),
        upsample_kernel_size=[2] * (levels - 1),
        filters=list(channels),
        norm_name="instance",
        deep_supervision=heads > 0,
        deep_supr_num=max(1, heads),
    )
    net.deep_supervision = bool(deep_supervision) and heads > 0
    # DynUNet registers its blocks twice (as attributes and inside ``skip_layers``, which is what runs);
    # torch.func.functional_call, which the feedback's hypergradient uses, does not restore the weights of a
    # module registered twice, so keep one registration of each
    for alias in ALIASES:
        delattr(net, alias)
    for layer in net.modules():
        if type(layer) is DynUNetSkipLayer:
            layer.__class__ = _SkipLayer  # same state, a forward TorchScript compiles (monai-genseg export, the zoo)
    return net
