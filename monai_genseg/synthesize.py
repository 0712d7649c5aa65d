"""Make synthetic image/mask pairs from a trained generator and a folder of masks."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.transforms import DivisiblePad, LoadImage, Resize

from monai_genseg.bundle import IMAGE_PATTERNS, compose, get_recipe, preset_for_run
from monai_genseg.data.checks import check_masks
from monai_genseg.data.datalist import file_stem
from monai_genseg.handlers.synthetic_saver import write_pair_item
from monai_genseg.networks import one_hot_mask
from monai_genseg.transforms import MaskToLabels, RandMaskAugment


def generator_preset(bundle: str, checkpoint: str | os.PathLike, scale: str = "auto") -> dict:
    """The sizes of the checkpoint's networks: ``auto``, the ``plan.json`` its run saved beside it; else the
    preset ``scale``."""
    recipe = get_recipe(bundle)
    if scale != "auto":
        return recipe.preset(scale).as_config()
    presets = {name: p.as_config() for name, p in recipe.presets.items()}
    return preset_for_run("auto", presets, os.path.dirname(os.path.abspath(checkpoint)))


def load_generator(bundle: str, checkpoint: str | os.PathLike, scale: str = "auto") -> torch.nn.Module:
    """The bundle's generator at ``scale``, with the weights and architecture logits of a GenSeg checkpoint."""
    parser = ConfigParser(compose(get_recipe(bundle)).train)
    parser["preset"] = generator_preset(bundle, checkpoint, scale)
    generator = parser.get_parsed_content("generator")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "generator" not in state:
        raise ValueError(
            f"{checkpoint}: not a GenSeg training checkpoint (no 'generator' entry); use models/genseg_checkpoint.pt."
        )
    try:
        generator.load_state_dict(state["generator"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ValueError(
            f"{checkpoint}: its generator does not fit bundle {bundle} at --scale {scale} ({first})."
        ) from e
    return generator.eval()


def synthesize(
    bundle: str, checkpoint: str, masks: str, output_dir: str, num: int = 4, scale: str = "auto", seed: int = 0
) -> list[Path]:
    """For every mask in MASKS, write NUM augmented masks and the images the generator makes from them.

    3D pairs are NIfTI with the mask's affine, 2D pairs PNG; existing files are never overwritten.
    """
    recipe = get_recipe(bundle)
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"--num {num!r} is not a whole number >= 1 (synthetic pairs per mask).")
    files = sorted({str(p) for pattern in IMAGE_PATTERNS for p in Path(masks).expanduser().glob(pattern)})
    if not files:
        raise FileNotFoundError(f"{masks}: no mask files ({', '.join(IMAGE_PATTERNS)}).")
    check_masks(files, recipe.spatial_dims, recipe.num_classes)
    generator = load_generator(bundle, checkpoint, scale)
    patch_size = generator_preset(bundle, checkpoint, scale)["patch_size"]
    levels = len(generator.down)
    augment = RandMaskAugment(recipe.spatial_dims, flip_prob=recipe.flip_prob)
    augment.set_random_state(seed)
    load = LoadImage(image_only=True, ensure_channel_first=True)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        mask = load(f)
        if recipe.spatial_dims == 2:
            mask = Resize(patch_size, mode="nearest")(MaskToLabels(recipe.num_classes)(mask))
        else:
            mask = DivisiblePad(2**levels)(mask)
        batch = augment(torch.as_tensor(mask)[None].repeat(num, *[1] * mask.ndim))
        with torch.no_grad():
            images = generator(one_hot_mask(batch, recipe.num_classes))
        affine = getattr(mask, "affine", None)
        for k in range(num):
            stem = out / f"{file_stem(f)}_syn{k}"
            for suffix in ("_image", "_mask"):
                target = Path(f"{stem}{suffix}{'.nii.gz' if recipe.spatial_dims == 3 else '.png'}")
                if target.exists():
                    raise FileExistsError(f"{target} exists; choose another output folder.")
            write_pair_item(images[k], batch[k], stem, affine, num_classes=recipe.num_classes)
            written.append(stem)
    return written


__all__ = ["load_generator", "synthesize"]
