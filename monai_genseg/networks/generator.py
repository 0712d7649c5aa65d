"""Mask-to-image generator whose down- and up-sampling operations are searchable.

The generator is a pix2pix-style U-Net. Every resolution change is a :class:`MixedOp`: all candidate
operations run and their outputs are blended by ``softmax(alpha)``. The logits ``alpha`` are the
architecture parameters that GenSeg's feedback loop updates from the segmenter's validation loss;
the argmax per block (the genotype) is the architecture that was found.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Act

DOWN_OPS = ("conv3", "conv5", "dilconv3")
UP_OPS = ("deconv3", "nearest_conv3", "linear_conv3")


def _down_op(name: str, spatial_dims: int, cin: int, cout: int, act, norm) -> nn.Module:
    """Candidate stride-2 operation: plain 3/5 kernels see different context, a dilated 3 sees 5 at 3's cost."""
    kernel, dilation = {"conv3": (3, 1), "conv5": (5, 1), "dilconv3": (3, 2)}[name]
    return Convolution(spatial_dims, cin, cout, strides=2, kernel_size=kernel, dilation=dilation, act=act, norm=norm)


def _up_op(name: str, spatial_dims: int, cin: int, cout: int, act, norm, last: bool = False) -> nn.Module:
    """Candidate x2 up-sampling: learnt (transposed conv) or fixed interpolation followed by a conv.

    The interpolating candidates first project to ``cout`` channels with a 1x1 conv at low resolution,
    so the conv at the doubled resolution is ``cout -> cout`` (20x cheaper in 3D than resizing the input).
    The ``last`` block makes the output image, so it has no normalisation or activation of its own.
    """
    kwargs = {"conv_only": True} if last else {"act": act, "norm": norm}
    if name == "deconv3":
        return Convolution(spatial_dims, cin, cout, strides=2, kernel_size=3, is_transposed=True, **kwargs)
    mode = "nearest" if name == "nearest_conv3" else ("bilinear" if spatial_dims == 2 else "trilinear")
    return nn.Sequential(
        Convolution(spatial_dims, cin, cout, kernel_size=1, conv_only=True),
        nn.Upsample(scale_factor=2, mode=mode, align_corners=None if mode == "nearest" else False),
        Convolution(spatial_dims, cout, cout, kernel_size=3, **kwargs),
    )


class MixedOp(nn.Module):
    """Softmax-weighted sum of candidate operations with one learnable logit per candidate.

    Args:
        candidates: the candidate modules, all mapping the same input shape to the same output shape.
        names: a name per candidate, used for the genotype.
    """

    def __init__(self, candidates: Sequence[nn.Module], names: Sequence[str]) -> None:
        super().__init__()
        if len(candidates) != len(names):
            raise ValueError(f"got {len(candidates)} candidates but {len(names)} names.")
        self.ops = nn.ModuleList(candidates)
        self.names = tuple(names)
        self.alpha = nn.Parameter(torch.zeros(len(candidates)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.alpha, dim=0)
        return sum(w * op(x) for w, op in zip(weights, self.ops))

    def chosen(self) -> str:
        return self.names[int(torch.argmax(self.alpha))]


class MaskToImageGenerator(nn.Module):
    """pix2pix-style U-Net from a one-hot mask to an image, with searchable resampling blocks.

    As in pix2pix, every encoder block halves the resolution and every decoder block doubles it, the
    decoder reading the matching encoder features through skip connections; the only full-resolution
    layer is the last up-sampling, which makes the image. Each block is a :class:`MixedOp`.

    Args:
        spatial_dims: 2 or 3.
        label_channels: channels of the one-hot mask input (number of labels, background included).
        out_channels: image channels to synthesize (1 for CT/MR/ultrasound/X-ray, 3 for RGB).
        channels: encoder output channels per level; ``len(channels)`` down and up blocks, so spatial
            sizes must be divisible by ``2 ** len(channels)``.
        down_ops: names of the candidate down-sampling operations (subset of ``DOWN_OPS``).
        up_ops: names of the candidate up-sampling operations (subset of ``UP_OPS``).
        act: activation of every block. Smooth activations (the default) keep the finite-difference
            hypergradient close to the exact one.
        norm: normalisation of every block. Instance norm keeps no running statistics, so the extra
            functional evaluations of the bilevel step have no side effects.
        output_act: activation of the output; ``"sigmoid"`` matches images scaled to [0, 1], None gives logits.
        padding_mode: padding of every (non-transposed) convolution. ``"replicate"`` (the default) continues
            the image at its border; zero padding made the generator paint a bright frame along the border
            of every synthetic image, which a segmenter trained on them would learn.
    """

    def __init__(
        self,
        spatial_dims: int,
        label_channels: int,
        out_channels: int,
        channels: Sequence[int] = (32, 64, 128, 256),
        down_ops: Sequence[str] = DOWN_OPS,
        up_ops: Sequence[str] = UP_OPS,
        act: str | tuple = "swish",
        norm: str | tuple = "instance",
        output_act: str | None = "sigmoid",
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if len(channels) < 1:
            raise ValueError(f"channels needs at least one level, got {channels}.")
        for name in (*down_ops, *up_ops):
            if name not in DOWN_OPS + UP_OPS:
                raise ValueError(f"unknown candidate operation '{name}'; choose from {DOWN_OPS + UP_OPS}.")
        self.spatial_dims = spatial_dims
        self.label_channels = label_channels
        dims, chans = spatial_dims, list(channels)
        self.down = nn.ModuleList(
            MixedOp([_down_op(n, dims, cin, cout, act, norm) for n in down_ops], down_ops)
            for cin, cout in zip([label_channels] + chans[:-1], chans)
        )
        # decoder block i (deepest first) reads the previous decoder output concatenated with the skip
        ins = [chans[-1]] + [2 * c for c in chans[-2::-1]]
        outs = chans[-2::-1] + [out_channels]
        self.up = nn.ModuleList(
            MixedOp([_up_op(n, dims, cin, cout, act, norm, last=i == len(outs) - 1) for n in up_ops], up_ops)
            for i, (cin, cout) in enumerate(zip(ins, outs))
        )
        self.output_act = Act[output_act]() if output_act else nn.Identity()
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):  # transposed convolutions only pad with zeros
                module.padding_mode = padding_mode

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        factor = 2 ** len(self.down)
        if mask.shape[1] != self.label_channels or any(s % factor for s in mask.shape[2:]):
            raise ValueError(
                f"generator expects a one-hot mask with {self.label_channels} channels and spatial sizes "
                f"divisible by {factor}, got shape {tuple(mask.shape)}."
            )
        skips, x = [], mask
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the deepest features are the decoder's input, not a skip
        x = self.up[0](x)
        for block, skip in zip(self.up[1:], reversed(skips)):
            x = block(torch.cat([x, skip], dim=1))
        return self.output_act(x)

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture logits, one vector per searchable block (encoder first)."""
        return [block.alpha for block in (*self.down, *self.up)]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the architecture logits, for the generator's weight optimizer."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def genotype(self) -> list[str]:
        """The operation with the largest logit in each block, e.g. ``['down0:conv5', ..., 'up0:deconv3']``."""
        down = [f"down{i}:{b.chosen()}" for i, b in enumerate(self.down)]
        return down + [f"up{i}:{b.chosen()}" for i, b in enumerate(self.up)]


def one_hot_mask(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Label index map ``(B, 1, *spatial)`` to the float one-hot ``(B, num_classes, *spatial)`` the generator reads."""
    index = label.long().squeeze(1)
    return F.one_hot(index.clamp(0, num_classes - 1), num_classes).movedim(-1, 1).to(torch.get_default_dtype())
