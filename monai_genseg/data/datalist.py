"""Finding the labelled cases and splitting them the same way in every mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def load_msd_datalist(dataset_dir: str | os.PathLike, section: str = "training", check_files: bool = True) -> list[dict[str, str]]:
    """The ``section`` list of an MSD ``dataset.json``, with paths made absolute.

    With ``check_files``, raises ``FileNotFoundError`` naming every missing file at once (training
    runs leave this to :func:`monai_genseg.data.checks.check_dataset`, which reports all problems).
    """
    root = Path(dataset_dir).expanduser()
    meta_file = root / "dataset.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{meta_file}: no dataset.json; expected the MSD layout (dataset.json, imagesTr/, labelsTr/).")
    try:
        meta = json.loads(meta_file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{meta_file}: not valid JSON ({e}).") from e
    if not isinstance(meta, dict) or not isinstance(meta.get(section), list):
        raise ValueError(f"{meta_file}: has no '{section}' list of {{image, label}} entries.")
    items, missing = [], []
    for i, entry in enumerate(meta[section]):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("image", "label")):
            raise ValueError(f"{meta_file}: entry {i} of '{section}' is not {{\"image\": path, \"label\": path}}: {entry!r:.80}")
        item = {k: str((root / entry[k]).resolve()) for k in ("image", "label")}
        missing += [f"{meta_file}: {k} file {p} does not exist" for k, p in item.items() if not os.path.exists(p)]
        items.append(item)
    if missing and check_files:
        raise FileNotFoundError("\n".join(missing))
    return items


def split_cases(datalist: list[dict], num_labeled: int, num_val: int, seed: int = 0, source: str = "the dataset") -> dict[str, list[dict]]:
    """Seeded split into ``train`` (num_labeled), ``val`` (num_val) and ``test`` (the rest).

    The same seed gives the same cases in baseline, separate and end2end runs, so they compare fairly.
    """
    needed = num_labeled + num_val
    if num_labeled < 1 or num_val < 1:
        raise ValueError(f"num_labeled and num_val must be at least 1, got {num_labeled} and {num_val}.")
    if len(datalist) < needed:
        raise ValueError(
            f"{source}: needs num_labeled + num_val = {num_labeled} + {num_val} = {needed} labelled cases, "
            f"found {len(datalist)}. Lower num_labeled/num_val or add cases."
        )
    order = seeded_order(len(datalist), seed)
    picked = [datalist[i] for i in order]
    return {"train": picked[:num_labeled], "val": picked[num_labeled:needed], "test": picked[needed:]}


def seeded_order(n: int, seed: int) -> list[int]:
    """The case order every split and check of a run uses."""
    return np.random.default_rng(seed).permutation(n).tolist()
