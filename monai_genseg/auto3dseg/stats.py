"""Turn Auto3DSeg's data analysis (``datastats.yaml``) into a GenSeg :class:`~monai_genseg.bundle.Recipe`.

The choices mirror MONAI's own algorithm templates: resample to the median spacing, normalise CT by
the foreground intensity percentiles and MR per volume, and size the patch from the median shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from monai_genseg.bundle.recipes import Recipe, percentile_intensity, preset_3d

# patch caps per preset: a CPU smoke run and a full-size GPU run; both divisible by the UNet's strides
PATCH_CAP = {"cpu": (48, 48, 32), "gpu": (128, 128, 128)}
PATCH_MULTIPLE = {"cpu": 8, "gpu": 16}


def _summary(stats: Mapping, key: str, source: str):
    try:
        node = stats["stats_summary"]
        for part in key.split("#"):
            node = node[part]
        return node
    except (KeyError, TypeError) as e:
        raise ValueError(f"{source}: no 'stats_summary#{key}'; is this a DataAnalyzer datastats.yaml?") from e


def _patch(shape: Sequence[float], scale: str) -> list[int]:
    m = PATCH_MULTIPLE[scale]
    return [min(cap, max(m, m * math.ceil(s / m))) for s, cap in zip(shape, PATCH_CAP[scale])]


def recipe_from_stats(stats: Mapping, modality: str = "ct", source: str = "datastats.yaml") -> Recipe:
    """A 3D recipe for the analysed dataset.

    Args:
        stats: the parsed ``datastats.yaml`` written by :class:`monai.apps.auto3dseg.DataAnalyzer`.
        modality: the ``modality`` of Auto3DSeg's input config (``ct``, ``mri``, ...).
        source: named in error messages.
    """
    labels = [int(v) for v in _summary(stats, "label_stats#labels", source)]
    if labels != list(range(len(labels))) or len(labels) < 2:
        raise ValueError(
            f"{source}: label values {labels} are not 0..N-1 with a foreground class; GenSeg's one-hot "
            "generator input needs consecutive labels (remap them, e.g. with MapLabelValued, before analysis)"
        )
    spacing = [float(s) for s in _summary(stats, "image_stats#spacing#median", source)]
    shape = [float(s) for s in _summary(stats, "image_stats#shape#median", source)]
    if len(spacing) != 3:
        raise ValueError(
            f"{source}: {len(spacing)}D images; the Auto3DSeg template is for 3D volumes "
            "(use a 2D bundle for 2D images)"
        )
    channels = int(_summary(stats, "image_stats#channels#max", source))
    if modality.lower() == "ct":
        fg = _summary(stats, "image_foreground_stats#intensity", source)
        low, high = float(fg["percentile_00_5"]), float(fg["percentile_99_5"])
        intensity = [
            {
                "_target_": "ScaleIntensityRanged",
                "keys": "image",
                "a_min": low,
                "a_max": high,
                "b_min": 0.0,
                "b_max": 1.0,
                "clip": True,
            }
        ]
        text = f"CT {low:.0f}..{high:.0f} (foreground 0.5-99.5 percentiles) scaled to [0, 1]"
    else:
        intensity = [percentile_intensity(channel_wise=True)]
        text = "per-volume 0.5-99.5 percentile range scaled to [0, 1]"
    pixdim = [round(s, 3) for s in spacing]
    class_names = tuple(f"label_{v}" for v in labels[1:])
    return Recipe(
        name="genseg",
        task=f"Segmentation of {', '.join(class_names)} in {modality.upper()}",
        spatial_dims=3,
        image_channels=channels,
        class_names=class_names,
        modality=modality.upper(),
        image_format="magnitude",
        dataset=source,
        licence="the dataset's own",
        layout="Auto3DSeg datalist",
        intensity=intensity,
        intensity_text=text,
        presets=preset_3d(pixdim, _patch(shape, "cpu"), _patch(shape, "gpu")),
        crop_foreground=modality.lower() == "ct",
    )
