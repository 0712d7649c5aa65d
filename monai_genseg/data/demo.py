"""The embedded demo datasets, generated once per version and seed into a cache folder."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from monai_genseg.data import demo_2d, demo_hippocampus, demo_liver

WRITERS = {
    "liver3d": (demo_liver.write_liver_demo, demo_liver.DEMO_VERSION),
    "hippocampus3d": (demo_hippocampus.write_hippocampus_demo, demo_hippocampus.DEMO_VERSION),
    **{task: (partial(demo_2d.write_2d_demo, task=task), demo_2d.DEMO_VERSION) for task in demo_2d.GENERATORS},
}


def cache_dir() -> Path:
    """``$MONAI_GENSEG_CACHE`` or ``~/.cache/monai_genseg``."""
    return Path(os.environ.get("MONAI_GENSEG_CACHE", Path.home() / ".cache" / "monai_genseg")).expanduser()


def demo_dataset(task: str, seed: int = 0, num_cases: int = 48) -> str:
    """Path of the demo dataset for ``task`` (e.g. ``"liver3d"``), generating it on first use."""
    if task not in WRITERS:
        raise ValueError(f"no demo dataset for task '{task}'; available: {sorted(WRITERS)}.")
    writer, version = WRITERS[task]
    root = cache_dir() / f"{task}_demo_v{version}_seed{seed}_n{num_cases}"
    if not root.exists():  # writers rename a finished folder into place, so existing means complete
        try:
            writer(root, num_cases=num_cases, seed=seed)
        except OSError:  # another process (e.g. another rank) renamed its copy into place first
            if not root.exists():
                raise
    return str(root)
