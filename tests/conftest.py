"""Shared tiny problems: a few 32x32 (or 16^3) blob images, tiny networks, a GenSegTrainer on the CPU."""

from __future__ import annotations

import pytest
import torch
from monai.losses import DiceCELoss
from monai.networks.nets import PatchDiscriminator, UNet
from torch.utils.data import DataLoader

from monai_genseg.engines import FeedbackSettings, GenerationSettings, GenSegTrainer
from monai_genseg.handlers import GeneratorWarmup
from monai_genseg.networks import MaskToImageGenerator
from monai_genseg.transforms import RandMaskAugment


def blob_pairs(n: int, spatial_dims: int = 2, size: int = 32, seed: int = 0) -> list[dict]:
    """Images of a bright rectangle (label 1) at a random place with noise."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        label = torch.zeros(1, *([size] * spatial_dims))
        lo = torch.randint(2, size // 2, (spatial_dims,), generator=g)
        region = (slice(None),) + tuple(slice(int(a), int(a) + size // 3) for a in lo)
        label[region] = 1
        image = 0.1 + 0.7 * label + 0.05 * torch.randn(label.shape, generator=g)
        pairs.append({"image": image, "label": label})
    return pairs


GENERATION_KEYS = ("lambda_l1", "lambda_syn", "syn_rampup_iterations", "generator_update_interval")
FEEDBACK_KEYS = ("arch_update_interval", "hypergradient_radius", "unroll", "unrolled_lr")


def make_trainer(
    mode: str = "end2end",
    spatial_dims: int = 2,
    size: int = 32,
    act: str = "swish",
    hypergradient: str = "finite_difference",
    iterations: int = 4,
    warmup: int = 0,
    warmup_patience: int = 4,
    train: DataLoader | None = None,
    optimizer_class: type = torch.optim.Adam,
    segmenter: torch.nn.Module | None = None,
    **kwargs,
) -> GenSegTrainer:
    """A tiny trainer; the GenerationSettings and FeedbackSettings fields may be given flat, as keywords, or whole.

    ``warmup`` > 0 attaches a :class:`GeneratorWarmup` of that many steps, checked every 2.
    """
    generation = GenerationSettings(**{k: kwargs.pop(k) for k in GENERATION_KEYS if k in kwargs})
    feedback = FeedbackSettings(hypergradient=hypergradient, **{k: kwargs.pop(k) for k in FEEDBACK_KEYS if k in kwargs})
    generation, feedback = kwargs.pop("generation", generation), kwargs.pop("feedback", feedback)  # given whole
    torch.manual_seed(0)
    seg = segmenter or UNet(spatial_dims, 1, 2, (4, 8), (2,), num_res_units=1, act=act, norm="instance")
    gen = MaskToImageGenerator(spatial_dims, 2, 1, channels=(4, 8), act=act)
    disc = PatchDiscriminator(num_layers_d=2, spatial_dims=spatial_dims, channels=4, in_channels=3, norm="instance")
    augment = RandMaskAugment(spatial_dims)
    augment.set_random_state(0)
    train = DataLoader(blob_pairs(4, spatial_dims, size), batch_size=2) if train is None else train
    val = DataLoader(blob_pairs(3, spatial_dims, size, seed=1), batch_size=3)
    handlers = list(kwargs.pop("train_handlers", None) or [])
    if warmup > 0:
        handlers.append(GeneratorWarmup(warmup, check_interval=2, patience=warmup_patience))
    return GenSegTrainer(
        device="cpu",
        max_epochs=1,
        epoch_length=iterations,
        train_data_loader=train,
        network=seg,
        optimizer=optimizer_class(seg.parameters(), 1e-2),
        loss_function=kwargs.pop("loss_function", None) or DiceCELoss(to_onehot_y=True, softmax=True),
        generator=gen,
        generator_optimizer=torch.optim.Adam(gen.weight_parameters(), 2e-4),
        discriminator=disc,
        discriminator_optimizer=torch.optim.Adam(disc.parameters(), 2e-4),
        arch_optimizer=torch.optim.Adam(gen.arch_parameters(), 3e-2),
        val_data_loader=val,
        mask_augment=augment,
        num_classes=2,
        mode=mode,
        generation=generation,
        feedback=feedback,
        train_handlers=handlers,
        **kwargs,
    )


@pytest.fixture
def trainer_factory():
    return make_trainer


@pytest.fixture(autouse=True, scope="session")
def _demo_cache(tmp_path_factory):
    """Generated demo data goes to a temporary folder, never to the user's cache."""
    import os

    old = os.environ.get("MONAI_GENSEG_CACHE")
    os.environ["MONAI_GENSEG_CACHE"] = str(tmp_path_factory.mktemp("demo_cache"))
    yield
    if old is None:
        os.environ.pop("MONAI_GENSEG_CACHE")
    else:
        os.environ["MONAI_GENSEG_CACHE"] = old
