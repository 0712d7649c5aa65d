"""The ``monai-genseg`` command. Training, evaluation and inference run through the bundles:

    python -m monai.bundle run --config_file bundles/liver3d/configs/train.yaml [--dataset_dir DIR]
"""

from __future__ import annotations

import sys

import fire

from monai_genseg.data import demo_dataset, load_msd_datalist, require_valid_dataset, write_liver_demo
from monai_genseg.data.checks import DataCheckError

BUNDLE_DATA = {"liver3d": {"spatial_dims": 3, "num_classes": 3, "image_channels": 1}}


def demo_data(output_dir: str | None = None, task: str = "liver3d", num_cases: int = 48, seed: int = 0) -> str:
    """Write the embedded demo dataset of TASK (MSD layout) to OUTPUT_DIR, or to the cache if omitted."""
    if output_dir is None:
        return demo_dataset(task, seed=seed, num_cases=num_cases)
    if task != "liver3d":
        raise ValueError(f"no demo dataset for task '{task}'; available: liver3d.")
    return str(write_liver_demo(output_dir, num_cases=num_cases, seed=seed))


def check_data(dataset_dir: str, bundle: str = "liver3d", num_labeled: int = 32, num_val: int = 8, seed: int = 0) -> str:
    """Check an MSD-layout DATASET_DIR for BUNDLE: every problem of the cases a run would use, one per line."""
    if bundle not in BUNDLE_DATA:
        raise ValueError(f"unknown bundle '{bundle}'; available: {sorted(BUNDLE_DATA)}.")
    datalist = load_msd_datalist(dataset_dir, check_files=False)
    try:
        report = require_valid_dataset(
            datalist, num_required=num_labeled + num_val, seed=seed, source=dataset_dir, **BUNDLE_DATA[bundle]
        )
    except DataCheckError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    return f"{dataset_dir}: {min(len(datalist), num_labeled + num_val)} cases checked, no errors, {len(report.warnings)} warnings."


def main() -> None:
    fire.Fire({"demo-data": demo_data, "check-data": check_data}, name="monai-genseg")


if __name__ == "__main__":
    main()
