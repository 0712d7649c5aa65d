"""The paper's tasks as recipes: what differs between bundles. The shared wiring is :mod:`.core`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

from monai_genseg.transforms import anatomy_safe_flip_prob


@dataclass(frozen=True)
class Preset:
    """The sizes of one run: network widths, patch, batch and budget. 3D presets set ``pixdim`` and
    ``samples_per_volume``, 2D presets ``batch_size``; the other one stays ``None`` and is not written."""

    patch_size: tuple[int, ...]
    segmenter_channels: tuple[int, ...]
    generator_channels: tuple[int, ...]
    discriminator_channels: int
    epoch_length: int
    max_epochs: int
    generator_warmup_iterations: int
    syn_rampup_iterations: int
    generator_update_interval: int
    arch_update_interval: int
    lr_warmup_iterations: int = 1
    early_stop_patience: int = 1000  # validations without a better Dice before training stops
    pixdim: tuple[float, ...] | None = None
    samples_per_volume: int | None = None
    batch_size: int | None = None
    # a CPU plan's precision: bfloat16 autocast where this CPU measured it faster (GPUs always autocast)
    cpu_bf16: bool | None = None

    # the order the bundles write the keys in: where a 3D volume is resampled to, then what is cut from it
    ORDER = (
        "pixdim",
        "patch_size",
        "samples_per_volume",
        "batch_size",
        "segmenter_channels",
        "generator_channels",
        "discriminator_channels",
        "epoch_length",
        "max_epochs",
        "generator_warmup_iterations",
        "syn_rampup_iterations",
        "generator_update_interval",
        "arch_update_interval",
        "lr_warmup_iterations",
        "early_stop_patience",
        "cpu_bf16",
    )

    def __getitem__(self, key: str) -> Any:
        """Read a preset as the config dict it becomes: ``preset["epoch_length"]``."""
        return self.as_config()[key]

    def as_config(self) -> dict[str, Any]:
        """A fresh plain dict for a config (lists, not tuples), without the unset keys."""
        values = asdict(self)
        return {
            k: list(values[k]) if isinstance(values[k], tuple) else values[k]
            for k in self.ORDER
            if values[k] is not None
        }


def preset_3d(pixdim, cpu_patch, gpu_patch, gpu_pixdim=None) -> dict[str, Preset]:
    """The ``demo`` (sized for the embedded demo data) and ``gpu`` (full size) presets of a 3D recipe; real
    data with no preset named gets a plan instead (:mod:`.plan`)."""
    return {
        "demo": Preset(
            pixdim=tuple(pixdim),
            patch_size=tuple(cpu_patch),
            samples_per_volume=2,
            segmenter_channels=(8, 16, 32, 64),
            generator_channels=(8, 16, 32),
            discriminator_channels=8,
            epoch_length=40,
            max_epochs=4,
            generator_warmup_iterations=100,
            syn_rampup_iterations=40,
            generator_update_interval=2,
            arch_update_interval=4,
            lr_warmup_iterations=8,
        ),
        "gpu": Preset(
            pixdim=tuple(gpu_pixdim or pixdim),
            patch_size=tuple(gpu_patch),
            samples_per_volume=4,
            segmenter_channels=(32, 64, 128, 256, 320),
            generator_channels=(32, 64, 128, 256),
            discriminator_channels=64,
            epoch_length=250,
            max_epochs=80,
            generator_warmup_iterations=4000,
            syn_rampup_iterations=2000,
            generator_update_interval=1,
            arch_update_interval=2,
            lr_warmup_iterations=1000,
            early_stop_patience=20,
        ),
    }


PRESETS_2D = {
    "demo": Preset(
        patch_size=(64, 64),
        batch_size=8,
        segmenter_channels=(16, 32, 64, 128),
        generator_channels=(16, 32, 64),
        discriminator_channels=16,
        epoch_length=25,
        max_epochs=4,
        generator_warmup_iterations=100,
        syn_rampup_iterations=25,
        generator_update_interval=2,
        arch_update_interval=4,
        lr_warmup_iterations=5,
    ),
    "gpu": Preset(
        patch_size=(256, 256),
        batch_size=16,
        segmenter_channels=(32, 64, 128, 256, 512),
        generator_channels=(64, 128, 256, 512),
        discriminator_channels=64,
        epoch_length=100,
        max_epochs=50,
        generator_warmup_iterations=2000,
        syn_rampup_iterations=1000,
        generator_update_interval=1,
        arch_update_interval=2,
        lr_warmup_iterations=250,
        early_stop_patience=15,
    ),
}


def percentile_intensity(channel_wise: bool = False) -> dict:
    """MR's normalisation: each volume's 0.5-99.5 percentile range to [0, 1] (MR has no absolute scale)."""
    out = {"_target_": "ScaleIntensityRangePercentilesd", "keys": "image", "lower": 0.5, "upper": 99.5}
    out.update({"b_min": 0.0, "b_max": 1.0, "clip": True, **({"channel_wise": True} if channel_wise else {})})
    return out


SCALE_0_255 = (
    {
        "_target_": "ScaleIntensityRanged",
        "keys": "image",
        "a_min": 0,
        "a_max": 255,
        "b_min": 0.0,
        "b_max": 1.0,
        "clip": True,
    },
)
LAYOUT_2D = (
    "a folder with images/ and masks/ whose files share a stem (PNG, JPG, BMP, TIF; masks 0/255 or label indices), "
    "or a datalist JSON"
)


@dataclass(frozen=True, eq=False)
class Recipe:
    """What one bundle states: modality, channels, labels, preprocessing, sizes, data source.

    Immutable: ``presets`` is a read-only mapping and ``intensity`` a tuple, so a config built from a
    recipe (which copies them) can be edited without touching the recipe.
    """

    name: str
    task: str
    spatial_dims: int
    image_channels: int
    class_names: tuple[str, ...]  # foreground classes, in label order 1..n
    modality: str
    image_format: str  # network_data_format "format" of the input
    dataset: str
    licence: str
    layout: str
    intensity: tuple[Mapping[str, Any], ...] = ()  # image normalisation transforms (config dicts)
    intensity_text: str = ""
    presets: Mapping[str, Preset] = field(default_factory=lambda: PRESETS_2D)
    crop_foreground: bool = False
    largest_component: bool = False  # keep each class's largest connected piece at inference (one organ per scan)
    affine: tuple[float, float, float] | None = None  # see affine_range; None: the default for spatial_dims
    value_range: tuple[float, float] | None = (
        None  # what a fixed intensity window expects; the data check refuses others
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "presets", MappingProxyType(dict(self.presets)))
        object.__setattr__(self, "intensity", tuple(MappingProxyType(dict(t)) for t in self.intensity))

    @property
    def num_classes(self) -> int:
        return len(self.class_names) + 1

    @property
    def flip_prob(self) -> float:
        """Mirror flips for the augmentation: see :func:`~monai_genseg.transforms.anatomy_safe_flip_prob`."""
        return anatomy_safe_flip_prob(self.spatial_dims)

    @property
    def mirror_axes(self) -> tuple[int, ...]:
        """The spatial axes the standard augmentation mirrors, and so the ones test-time mirroring may
        average over: both in 2D; in 3D only the first (left-right after RAS), since a flip along the
        others swaps classes (anterior and posterior hippocampus) the network never saw swapped."""
        return (0, 1) if self.spatial_dims == 2 else (0,)

    @property
    def affine_range(self) -> tuple[float, float, float]:
        """Probability, largest rotation (radians) and scale range of the standard augmentation's affine: the
        recipe's own ``affine``, else 2D p 0.3, 15 degrees, 10% (photographs), 3D nnU-Net's p 0.6, 30 degrees, 25%
        (on hippocampus with 8 cases they add 0.007 Dice over the 2D ranges)."""
        return self.affine or ((0.3, 0.26, 0.1) if self.spatial_dims == 2 else (0.6, 0.52, 0.25))

    def preset(self, scale: str) -> Preset:
        """The preset ``scale``, or one line naming the option and the presets there are."""
        if scale not in self.presets:
            raise ValueError(f"--scale '{scale}' is not one of {sorted(self.presets)} (bundle {self.name}).")
        return self.presets[scale]


def photo_2d(
    name: str,
    task: str,
    channels: int,
    target: str,
    modality: str,
    dataset: str,
    licence: str,
    layout_note: str = "",
    affine: tuple[float, float, float] | None = None,
) -> Recipe:
    """A binary 2D task on 8-bit images: the intensity scaling, the layout and the descriptions follow from
    ``channels``."""
    colour = "RGB" if channels == 3 else "grey,"
    return Recipe(
        name=name,
        task=task,
        spatial_dims=2,
        image_channels=channels,
        class_names=(target,),
        modality=modality,
        image_format="RGB" if channels == 3 else "magnitude",
        dataset=dataset,
        licence=licence,
        layout=LAYOUT_2D + (f". {layout_note}" if layout_note else ""),
        intensity=SCALE_0_255,
        value_range=(0, 255),
        intensity_text=f"{colour} scaled from 0..255 to [0, 1], resized to the preset size",
        affine=affine,
    )


RECIPES = {
    r.name: r
    for r in [
        Recipe(
            name="liver3d",
            task="Liver and liver-tumour segmentation in CT",
            spatial_dims=3,
            image_channels=1,
            class_names=("liver", "tumour"),
            modality="CT",
            image_format="hounsfield",
            dataset="Medical Segmentation Decathlon Task03_Liver (131 portal-venous CT volumes; http://medicaldecathlon.com/)",
            licence="CC-BY-SA 4.0",
            layout="MSD: dataset.json with a training list, imagesTr/, labelsTr/ (0 background, 1 liver, 2 tumour)",
            intensity=(
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "image",
                    "a_min": -150,
                    "a_max": 250,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
            ),
            intensity_text="CT window -150..250 HU scaled to [0, 1], cropped to the body",
            presets=preset_3d([4.0, 4.0, 5.0], [48, 48, 32], [128, 128, 64], gpu_pixdim=[1.5, 1.5, 2.0]),
            crop_foreground=True,
        ),
        Recipe(
            name="hippocampus3d",
            task="Anterior and posterior hippocampus segmentation in MRI",
            spatial_dims=3,
            image_channels=1,
            class_names=("anterior", "posterior"),
            modality="MR",
            image_format="magnitude",
            dataset="Medical Segmentation Decathlon Task04_Hippocampus (394 T1 MRI crops; http://medicaldecathlon.com/)",
            licence="CC-BY-SA 4.0",
            layout="MSD: dataset.json with a training list, imagesTr/, labelsTr/ "
            "(0 background, 1 anterior, 2 posterior)",
            intensity=(percentile_intensity(),),
            intensity_text="per-volume 0.5-99.5 percentile range scaled to [0, 1] (MR has no absolute scale)",
            presets=preset_3d([1.0, 1.0, 1.0], [32, 32, 32], [48, 64, 48]),
        ),
        photo_2d(
            "skin_lesion2d",
            "Skin lesion segmentation in dermoscopy",
            3,
            "lesion",
            "dermoscopy",
            "ISIC 2017 Task 1 (2000 training, 150 validation, 600 test images; https://challenge.isic-archive.com/); "
            "out-of-domain test: PH2",
            "ISIC Archive terms (CC-0 / CC-BY-NC per image)",
            # a dermoscope has no up: any angle, +-25% scale, p 0.6; on 40 ISIC images over 3 seeds, +0.006 Dice
            # on 1960 other training images (every seed) and +0.008 on the 150 validation ones (benchmarks/vs_nnunet.md)
            affine=(0.6, 3.1416, 0.25),
        ),
        photo_2d(
            "breast_us2d",
            "Breast lesion segmentation in ultrasound",
            1,
            "lesion",
            "ultrasound",
            "BUSI, Breast Ultrasound Images (780 images; Al-Dhabyani et al., Data in Brief 2020)",
            "CC0 (as published with the article)",
            layout_note="BUSI ships name.png with name_mask.png (and name_mask_1.png for a second lesion): "
            "`monai-genseg convert-busi SRC DST` merges the masks into this layout",
        ),
        photo_2d(
            "polyp2d",
            "Polyp segmentation in colonoscopy",
            3,
            "polyp",
            "colonoscopy",
            "Kvasir-SEG (1000 images; https://datasets.simula.no/kvasir-seg/) and CVC-ClinicDB (612 images)",
            "research and educational use (see each dataset's terms)",
        ),
        photo_2d(
            "foot_ulcer2d",
            "Foot ulcer segmentation in clinical photographs",
            3,
            "ulcer",
            "photograph",
            "FUSeg 2021 challenge (1210 images; Wang et al., Sci Rep 10:21897, 2020)",
            "research use; cite Wang et al. 2020",
        ),
        photo_2d(
            "placenta_vessel2d",
            "Placental vessel segmentation in fetoscopy",
            3,
            "vessel",
            "fetoscopy",
            "FetReg 2021 (EndoVis challenge; Bano et al. 2021); the vessel class of its segmentation masks",
            "research use (see the challenge terms)",
        ),
        photo_2d(
            "lung_xray2d",
            "Lung segmentation in chest X-ray",
            1,
            "lung",
            "X-ray",
            "JSRT (247 images), Montgomery County (138) or Shenzhen (566) chest X-ray sets",
            "see each dataset's terms (Montgomery and Shenzhen: public domain, NLM)",
            layout_note="Montgomery ships leftMask/ and rightMask/: "
            "`monai-genseg convert-montgomery SRC DST` merges them",
        ),
    ]
}


def get_recipe(name: str) -> Recipe:
    """The recipe of bundle ``name``, or an error that lists the bundles there are."""
    if name not in RECIPES:
        raise ValueError(f"unknown bundle '{name}'; available: {sorted(RECIPES)}.")
    return RECIPES[name]
