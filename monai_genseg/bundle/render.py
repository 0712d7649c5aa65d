"""Writing a composed bundle: its configs as YAML, its metadata, README, data licence, logging and LICENSE.

The bundles are self-contained folders (MONAI's runner, MONAI Label and the model zoo read one folder),
so everything a bundle needs is written into it.
"""

from __future__ import annotations

import json
import math
import os
from importlib import metadata as package_metadata
from pathlib import Path

import yaml

from monai_genseg import __version__
from monai_genseg.atomic import atomic_write_text
from monai_genseg.bundle.layers import Bundle
from monai_genseg.bundle.measured import MEASURED
from monai_genseg.bundle.recipes import Recipe
from monai_genseg.data.datalist import NUM_LABELED, NUM_VAL

# the versions the bundles were last verified with; written as constants so the generated files do
# not change (and the staleness test does not fail) whenever a newer release is installed
VERIFIED_WITH = {
    "monai": "1.6.1",
    "torch": "2.13.0",
    "numpy": "2.4.6",
    "nibabel": "5.4.2",
    "pytorch-ignite": "0.5.5",
    "pillow": "13.0.0",
}
REGENERATE = "monai-genseg init all bundles --overwrite true"


def metadata(r: Recipe) -> dict:
    """``configs/metadata.json``: what the model zoo's schema asks for."""
    factor = 2 ** len(r.presets["gpu"]["segmenter_channels"])  # the deepest level keeps at least 2 voxels
    shape = [f"{factor}*n"] * r.spatial_dims
    io = {"is_patch_data": r.spatial_dims == 3, "spatial_shape": shape, "dtype": "float32"}
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json",
        "version": "0.1.0",
        "changelog": {"0.1.0": "first release: GenSeg end2end training, inference and per-case evaluation"},
        "monai_version": VERIFIED_WITH["monai"],
        "pytorch_version": VERIFIED_WITH["torch"],
        "numpy_version": VERIFIED_WITH["numpy"],
        "required_packages_version": {
            "monai-genseg": __version__,
            **{k: VERIFIED_WITH[k] for k in ("nibabel", "pytorch-ignite", "pillow")},
        },
        "supported_apps": {},
        "name": f"GenSeg {r.task[0].lower()}{r.task[1:]}",
        "task": f"{r.task} from a few labelled cases",
        "description": "A U-Net segmenter (nnU-Net's layout, MONAI DynUNet) trained with GenSeg: a searchable "
        "mask-to-image generator makes extra image/mask pairs from "
        "augmented real masks, and its architecture is updated from the segmenter's validation loss.",
        "authors": "monai-genseg contributors",
        "copyright": "Copyright (c) monai-genseg contributors",
        "data_source": f"{r.dataset}; an embedded synthetic demo set when no data is given",
        "data_type": "nibabel" if r.spatial_dims == 3 else "png/jpg",
        "image_classes": f"{r.image_channels} channel {r.modality}: {r.intensity_text}",
        "label_classes": ", ".join(f"{i} {n}" for i, n in enumerate(("background", *r.class_names))),
        "pred_classes": ", ".join(f"{i} {n}" for i, n in enumerate(("background", *r.class_names))),
        "eval_metrics": {},
        "intended_use": "Research only; not for clinical diagnosis",
        "references": [
            "Zhang L, et al. Generative AI enables medical image segmentation in ultra low-data regimes. "
            "Nature Communications (2025).",
            "Isola P, et al. Image-to-Image Translation with Conditional Adversarial Networks. CVPR (2017).",
            "Liu H, et al. DARTS: Differentiable Architecture Search. ICLR (2019).",
        ],
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": r.image_format,
                    "modality": r.modality,
                    "num_channels": r.image_channels,
                    **io,
                    "value_range": [0, 1],
                    "channel_def": {
                        str(i): c for i, c in enumerate(["R", "G", "B"] if r.image_channels == 3 else ["image"])
                    },
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": r.num_classes,
                    **io,
                    "value_range": [],
                    "channel_def": {str(i): n for i, n in enumerate(("background", *r.class_names))},
                }
            },
        },
    }


def bundle_readme(r: Recipe) -> str:
    """``docs/README.md``: the data, the commands, the preprocessing."""
    cfg = f"bundles/{r.name}/configs"
    demo, gpu = r.presets["demo"], r.presets["gpu"]
    sizes = "x".join(map(str, demo["patch_size"])), "x".join(map(str, gpu["patch_size"]))
    if r.spatial_dims == 3:
        spacing = " mm (demo) / ".join("x".join(map(str, p["pixdim"])) for p in (demo, gpu))
        resampled = f"resampled to {spacing} mm (gpu); patches"
    else:
        resampled = "images resized to"
    prob, angle, zoom = r.affine_range
    turn = "any angle" if angle >= math.pi else f"up to {round(math.degrees(angle))} degrees"
    affine = f"an affine (p {prob}, rotation by {turn}, scale +-{round(zoom * 100)}%)"
    measured = f"\n## Measured on real data\n\n{MEASURED[r.name].strip()}\n" if r.name in MEASURED else ""
    return f"""# {r.name}: GenSeg for {r.task[0].lower()}{r.task[1:]}

A {r.spatial_dims}D U-Net segmenter (nnU-Net's layout: MONAI's DynUNet with deep supervision) trained with GenSeg from a few labelled {r.modality} {"volumes" if r.spatial_dims == 3 else "images"}.
A searchable mask-to-image generator turns deformed copies of the labelled masks into extra synthetic
pairs, and its architecture is updated from the segmenter's loss on real validation cases.
This file is generated from the `{r.name}` recipe by `monai-genseg init {r.name}`.

## Data

**Default: an embedded synthetic demo** ({"3D phantoms, MSD layout" if r.spatial_dims == 3 else "96x96 PNG pairs"}) generated on first
use under `~/.cache/monai_genseg/`. It shows the pipeline working; it says nothing about accuracy.

**Real data: {r.dataset}.** Licence: {r.licence}. Expected layout: {r.layout}.
`--dataset_dir` takes that folder (or a datalist JSON file). Its cases are split with `seed`: a quarter
(1 to 8) validate and the rest train, unless `--num_labeled`/`--num_val` say otherwise (the cases
left over are held out for `evaluate.yaml`); the demo keeps {NUM_LABELED} training and {NUM_VAL} validation cases.
Classes: {", ".join(f"{i} {n}" for i, n in enumerate(("background", *r.class_names)))}.

## Commands

```bash
python -m monai.bundle run --config_file {cfg}/train.yaml                                 # the demo
python -m monai.bundle run --config_file {cfg}/train.yaml --dataset_dir DATA               # real data, planned
python -m monai.bundle run --config_file "['{cfg}/train.yaml','{cfg}/evaluate.yaml']" --dataset_dir DATA --eval_dataset_dir OTHER
python -m monai.bundle run --config_file {cfg}/inference.yaml --dataset_dir NEW_IMAGES
python -m monai.bundle run --config_file {cfg}/train.yaml --dataset_dir DATA --mode end2end  # GenSeg's generator
```

**Sizes.** `--scale auto` (the default) trains the embedded demo with the small `demo` preset and
real data with a **plan**: MONAI's DataAnalyzer fingerprints the labelled cases, and the plan picks
the spacing, a patch covering the median image (2D: the training resolution), the U-Net's depth and
widths, the batch, and the number of steps that fit `--time_budget_minutes` (15) on this machine,
from a measured step. It is printed and saved as `models/plan.json`; evaluation, inference, export
and `--resume` read the sizes from it. `--scale gpu` is the fixed full-size preset; `--scale demo`
on real data warns that it will not converge.

**Training.** The segmenter is nnU-Net's U-Net (MONAI's DynUNet: two 3x3 convolutions per level,
full resolution included), trained with deep supervision: DiceCE on its output and on its two
lower decoder levels' outputs, weighted 1, 1/2, 1/4 (`--deep_supervision false` trains the output
alone; the weights fit either way). Adam with a linear warm-up, then cosine decay to zero at the step ceiling; it stops
early after `early_stop_patience` validations without a better Dice. `models/model.pt` holds the
final weights (`--model_selection final`, the default: a few validation cases are too few to pick a
checkpoint by, and the decayed learning rate leaves the last weights converged), or the best
validation Dice's with `--model_selection best`.

**Modes** (`--mode`): `auto` (default) is `end2end` on the demo and `baseline` on real data, where
GenSeg has not beaten the plain segmenter in this project's studies (docs/low_data_study.md).
`end2end` is GenSeg, `joint` end2end without the feedback loop, `separate` a frozen pix2pix
generator, `baseline` real pairs only (with `--train_on_val auto`, on every labelled case).

`evaluate.yaml` scores the held-out cases, or every case of `--eval_dataset_dir` (any supported
layout, e.g. another dataset of the same task), writing per-case Dice, IoU and HD95 to
`eval/metrics_per_case.csv` and `eval/metrics.json`.

## Preprocessing and inference

{r.intensity_text}; {resampled}
{sizes[0]} (demo) or {sizes[1]} (gpu), or as planned. Training augmentation shared by all modes: flips, {affine},
intensity scale/shift, noise (`--augmentation standard`), or the generator's mask geometry
applied to image and label together (`--augmentation strong`). Evaluation and inference: sliding
window with Gaussian blending, averaged over mirror flips along axes {list(r.mirror_axes)} (the axes training
mirrors; `--tta false` turns it off){"; each class's largest connected component kept" if r.largest_component else ""}
(`--largest_component`); predictions are written in the input's geometry ({"NIfTI" if r.spatial_dims == 3 else "PNG masks, 0/255"}).
{measured}
## Disclaimer

Research software; not for clinical use.
"""  # noqa: E501 (command lines a reader copies whole)


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, short lists of scalars on one line (``keys: [image, label]``), no YAML anchors."""

    def ignore_aliases(self, data) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list):
    scalars = all(isinstance(x, (str, int, float, bool, type(None))) for x in data)
    flat = scalars and len(data) <= 12 and sum(len(str(x)) + 2 for x in data) <= 100  # else one item a line
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


HEADER = (
    "# Generated from the '{name}' recipe by `monai-genseg init {name}`. In the repository, edit\n"
    f"# monai_genseg/bundle/ and run `{REGENERATE}`, not this file.\n"
)
WHAT = {
    "train": "train: python -m monai.bundle run --config_file {cfg}/train.yaml [--dataset_dir DIR] [--scale gpu]",
    "evaluate": "evaluate (overlay): --config_file \"['{cfg}/train.yaml','{cfg}/evaluate.yaml']\"",
    "multi_gpu_train": "multi-GPU: torchrun --nproc_per_node N -m monai.bundle run --config_file "
    "\"['{cfg}/train.yaml','{cfg}/multi_gpu_train.yaml']\"",
    "inference": "inference: python -m monai.bundle run --config_file {cfg}/inference.yaml --dataset_dir IMAGES",
}


def to_yaml(cfg: dict) -> str:
    """A config as the bundles write it: keys in order, block mappings, one-line scalar lists."""
    return yaml.dump(cfg, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)


def render(bundle: Bundle) -> dict[str, str]:
    """Every generated file of a bundle, path relative to the bundle folder -> content."""
    r = bundle.recipe
    cfg = f"bundles/{r.name}/configs"
    files = {}
    for name, config in bundle.configs.items():
        what = WHAT.get(name, name).format(cfg=cfg)
        files[f"configs/{name}.yaml"] = HEADER.format(name=r.name) + bundle.note + f"# {what}\n" + to_yaml(config)
    files.update(
        {
            "configs/metadata.json": json.dumps(metadata(r), indent=4) + "\n",
            "configs/logging.conf": LOGGING_CONF,
            "docs/README.md": bundle_readme(r),
            # the model zoo asks for the data's licence conditions in docs/data_license.txt
            "docs/data_license.txt": f"Data: {r.dataset}\nLicence: {r.licence}\n"
            "The weights of this bundle were trained on that data; its terms apply to their use.\n",
            "LICENSE": project_license(),
        }
    )
    return files


LOGGING_CONF = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


def project_license() -> str:
    """The project's LICENSE, as installed with the package's metadata (wheel or editable install)."""
    # every copy of the metadata found (a build's egg-info in the working directory may come first)
    for dist in package_metadata.distributions(name="monai-genseg"):
        for name in ("licenses/LICENSE", "LICENSE"):
            text = dist.read_text(name)
            if text:
                return text
    raise FileNotFoundError("monai-genseg's LICENSE is missing from its installed metadata; reinstall the package.")


def write(bundle: Bundle, dest: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``dest/<name>``, each file whole (atomically), and an empty ``models/``.

    An existing bundle folder is refused unless ``overwrite``; then only its generated files are
    rewritten: trained models, evaluations and any file of the user's stay.
    """
    target = Path(dest).expanduser() / bundle.recipe.name
    files = render(bundle)
    if not overwrite and any((target / rel).exists() for rel in files):
        raise FileExistsError(
            f"{target} exists; pass overwrite=True (--overwrite true) to rewrite its configs and docs "
            "(models/ and eval/ are kept)."
        )
    for rel, text in files.items():
        atomic_write_text(target / rel, text)
    (target / "models").mkdir(exist_ok=True)
    return target
