"""The ``monai-genseg`` command. Training, evaluation and inference run through the bundles:

python -m monai.bundle run --config_file bundles/liver3d/configs/train.yaml [--dataset_dir DIR]
"""

from __future__ import annotations

import inspect
import os
import sys
import tempfile

import fire

from monai_genseg import errors
from monai_genseg.bundle import RECIPES, STANDARD, Inference, compose, flag, get_recipe, whole, write
from monai_genseg.data import NUM_LABELED, NUM_VAL, demo_dataset, load_datalist, require_valid_dataset
from monai_genseg.data.checks import DataCheckError
from monai_genseg.data.converters import convert_busi, convert_montgomery


def init(bundle: str, dest: str = "bundles", overwrite: bool = False) -> str:
    """Write bundle BUNDLE (or 'all' of them) to DEST/BUNDLE, ready for python -m monai.bundle run. An existing
    bundle there is refused unless OVERWRITE; then only its configs and docs are rewritten (models/ and eval/ stay)."""
    names = sorted(RECIPES) if bundle == "all" else [get_recipe(bundle).name]
    overwrite = flag("overwrite", overwrite)
    written = [write(compose(get_recipe(name), *STANDARD), dest, overwrite=overwrite) for name in names]
    return "\n".join(f"wrote {path}" for path in written)


def demo_data(task: str = "liver3d", output_dir: str | None = None, num_cases: int = 48, seed: int = 0) -> str:
    """Write the embedded demo dataset of TASK (a bundle name) to OUTPUT_DIR, or to the cache if omitted."""
    from monai_genseg.data.demo import WRITERS

    if task not in WRITERS:
        raise ValueError(f"no demo dataset for task '{task}'; available: {sorted(WRITERS)}.")
    num_cases, seed = whole("num_cases", num_cases, 1), whole("seed", seed)
    if output_dir is None:
        return demo_dataset(task, seed=seed, num_cases=num_cases)
    return str(WRITERS[task][0](output_dir, num_cases=num_cases, seed=seed))


def check_data(
    dataset_dir: str, bundle: str = "liver3d", num_labeled: int = NUM_LABELED, num_val: int = NUM_VAL, seed: int = 0
) -> str:
    """Check DATASET_DIR (MSD folder, images/ + masks/ folder, or datalist JSON) for BUNDLE: every problem
    of the cases a run would use, one per line; exit status 1 if there is any."""
    r = get_recipe(bundle)
    num_labeled, num_val, seed = whole("num_labeled", num_labeled, 1), whole("num_val", num_val, 1), whole("seed", seed)
    datalist = load_datalist(dataset_dir, check_files=False)
    try:
        report = require_valid_dataset(
            datalist,
            spatial_dims=r.spatial_dims,
            num_classes=r.num_classes,
            image_channels=r.image_channels,
            num_required=num_labeled + num_val,
            seed=seed,
            source=dataset_dir,
            value_range=r.value_range,
        )
    except DataCheckError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    checked = min(len(datalist), num_labeled + num_val)
    return f"{dataset_dir}: {checked} cases checked, no errors, {len(report.warnings)} warnings."


def convert_busi_cmd(src: str, dst: str) -> str:
    """BUSI's layout (name.png, name_mask.png, name_mask_1.png) to DST/images + DST/masks, lesion masks merged."""
    return f"{convert_busi(src, dst)} pairs written to {dst}"


def convert_montgomery_cmd(src: str, dst: str) -> str:
    """Montgomery's layout (CXR_png/, ManualMask/leftMask/, rightMask/) to DST/images + DST/masks, lungs merged."""
    return f"{convert_montgomery(src, dst)} pairs written to {dst}"


def synthesize(
    bundle: str, checkpoint: str, masks: str, output_dir: str, num: int = 4, scale: str = "auto", seed: int = 0
) -> str:
    """Load the generator of a GenSeg CHECKPOINT (models/genseg_checkpoint.pt) of BUNDLE and write NUM synthetic
    image/mask pairs per mask in the folder MASKS to OUTPUT_DIR (NIfTI in 3D, PNG in 2D)."""
    from monai_genseg.synthesize import synthesize as run

    written = run(bundle, checkpoint, masks, output_dir, num=num, scale=scale, seed=seed)
    return f"{len(written)} pairs written to {output_dir}"


def export(
    bundle: str, ckpt_file: str | None = None, filepath: str | None = None, scale: str = "auto", bundle_root: str = "."
) -> str:
    """Export the trained segmenter of BUNDLE to TorchScript: CKPT_FILE (default BUNDLE_ROOT/models/model.pt,
    where training wrote it) to FILEPATH (default BUNDLE_ROOT/models/model.ts)."""
    from monai.bundle import ckpt_export

    ckpt_file = ckpt_file or f"{bundle_root}/models/model.pt"
    filepath = filepath or f"{bundle_root}/models/model.ts"
    built = compose(get_recipe(bundle), Inference(), scale=scale)
    with (
        tempfile.TemporaryDirectory() as tmp
    ):  # the configs as this package writes them, whatever the bundle folder holds
        configs = write(built, tmp) / "configs"
        ckpt_export(
            net_id="network_def",
            filepath=filepath,
            ckpt_file=ckpt_file,
            meta_file=f"{configs}/metadata.json",
            config_file=f"{configs}/inference.yaml",
            bundle_root=os.path.abspath(bundle_root),  # auto: the sizes in its models/plan.json
        )
    return f"exported {ckpt_file} to {filepath}"


def auto3dseg_template(dest: str, overwrite: bool = False) -> str:
    """Copy the Auto3DSeg algorithm template 'genseg' into DEST, beside MONAI's own templates there;
    then AutoRunner(templates_path_or_url=DEST) runs it with them (docs/auto3dseg.md)."""
    from monai_genseg.auto3dseg import copy_template

    return f"wrote {copy_template(dest, overwrite=flag('overwrite', overwrite))}"


def monailabel_bundle(
    name: str, dest: str, scale: str = "gpu", model: str | None = None, overwrite: bool = False
) -> str:
    """Write DEST/NAME: bundle NAME for MONAI Label's monaibundle app, with SCALE fixed in its configs and
    MODEL (a trained models/model.pt) copied in. Then: monailabel start_server --app APP --studies DATA
    --conf models NAME (docs/monailabel.md)."""
    from monai_genseg.monailabel import prepare_bundle

    return f"wrote {prepare_bundle(name, dest, scale=scale, model=model, overwrite=flag('overwrite', overwrite))}"


def zoo_package(
    name: str,
    dest: str,
    model: str,
    scale: str = "gpu",
    url_base: str | None = None,
    torchscript: str | None = None,
    overwrite: bool = False,
) -> str:
    """Write DEST/NAME for a model-zoo pull request: the bundle with SCALE fixed and MODEL (a trained
    models/model.pt, plus TORCHSCRIPT model.ts if given). Files over 25 MB are listed in large_files.yml
    as URL_BASE/<file> with their md5 instead (upload them there); docs/model_zoo.md."""
    from monai_genseg.model_zoo import package_for_zoo

    extra = (torchscript,) if torchscript else ()
    overwrite = flag("overwrite", overwrite)
    target = package_for_zoo(name, dest, model, scale=scale, url_base=url_base, extra_models=extra, overwrite=overwrite)
    listed = " (large files in large_files.yml)" if (target / "large_files.yml").exists() else ""
    return f"wrote {target}{listed}"


def bundles() -> str:
    """The bundles and the commands that train, evaluate and run them."""
    lines = [f"{name:<18} {r.task} ({r.modality}, {r.spatial_dims}D)" for name, r in sorted(RECIPES.items())]
    lines += [
        "",
        "write one: monai-genseg init <name> [DIR]   (DIR defaults to bundles/)",
        "train:     python -m monai.bundle run --config_file bundles/<name>/configs/train.yaml "
        "[--dataset_dir DIR] [--scale gpu]",
        "evaluate:  python -m monai.bundle run --config_file "
        "\"['bundles/<name>/configs/train.yaml','bundles/<name>/configs/evaluate.yaml']\"",
        "inference: python -m monai.bundle run --config_file bundles/<name>/configs/inference.yaml "
        "--dataset_dir IMAGES",
    ]
    return "\n".join(lines)


COMMANDS = {
    "init": init,
    "bundles": bundles,
    "demo-data": demo_data,
    "check-data": check_data,
    "synthesize": synthesize,
    "export": export,
    "zoo-package": zoo_package,
    "monailabel-bundle": monailabel_bundle,
    "auto3dseg-template": auto3dseg_template,
    "convert-busi": convert_busi_cmd,
    "convert-montgomery": convert_montgomery_cmd,
}


def unknown_option(argv: list[str]) -> str | None:
    """One line naming a misspelt ``--option`` of the command in ``argv`` and the options it takes (fire would
    hand it to the command's result, a string, and list Python's string methods)."""
    if not argv or argv[0] not in COMMANDS:
        return None
    params = inspect.signature(COMMANDS[argv[0]]).parameters
    for arg in argv[1:]:
        if arg == "--":
            break  # what follows is fire's own (--trace, --verbose, ...)
        if not arg.startswith("--") or arg == "--help":
            continue
        name = arg[2:].split("=", 1)[0].replace("-", "_")
        shortcut = len(name) == 1 and sum(p.startswith(name) for p in params) == 1  # fire's --d for --dest
        if name not in params and not shortcut and not (name.startswith("no") and name[2:] in params):
            options = ", ".join(f"--{p}" for p in params)
            return f"monai-genseg {argv[0]}: unknown option {arg.split('=', 1)[0]}; it takes {options}"
    return None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    errors.install()  # a user's mistake inside a command: one line, no traceback
    problem = unknown_option(argv)
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(2)
    fire.Fire(COMMANDS, command=argv, name="monai-genseg")


if __name__ == "__main__":
    main()
