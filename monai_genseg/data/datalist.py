"""Finding the labelled cases and splitting them the same way in every mode.

Three layouts are understood (:func:`load_datalist`): an MSD folder (``dataset.json`` with a
``training`` list), a 2D folder with ``images/`` and ``masks/`` whose files share a stem, and a
datalist JSON file (a list, or a ``training`` list, of ``{"image", "label"}`` paths relative to it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

# the default split of every bundle, command and study: 32 training cases, 8 validation cases, the rest held out
NUM_LABELED, NUM_VAL = 32, 8


def load_msd_datalist(
    dataset_dir: str | os.PathLike, section: str = "training", check_files: bool = True
) -> list[dict[str, str]]:
    """The ``section`` list of an MSD ``dataset.json``, with paths made absolute.

    With ``check_files``, raises ``FileNotFoundError`` naming every missing file at once (training
    runs leave this to :func:`monai_genseg.data.checks.check_dataset`, which reports all problems).
    """
    root = Path(dataset_dir).expanduser()
    meta_file = root / "dataset.json"
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{meta_file}: no dataset.json; expected the MSD layout (dataset.json, imagesTr/, labelsTr/)."
        )
    try:
        meta = json.loads(meta_file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{meta_file}: not valid JSON ({e}).") from e
    if not isinstance(meta, dict) or not isinstance(meta.get(section), list):
        raise ValueError(f"{meta_file}: has no '{section}' list of {{image, label}} entries.")
    return _resolve_entries(meta[section], root, meta_file, check_files)


def split_cases(
    datalist: list[dict],
    num_labeled: int | None = NUM_LABELED,
    num_val: int | None = NUM_VAL,
    seed: int = 0,
    source: str = "the dataset",
    demo: bool = False,
) -> dict[str, list[dict]]:
    """Seeded split into ``train`` (num_labeled), ``val`` (num_val) and ``test`` (the rest).

    The same seed gives the same cases in baseline, separate and end2end runs, so they compare fairly.
    ``None`` for a user's dataset: a quarter of the cases (1 to 8) validate and every other case trains,
    since a user with few labels holds none back; for the embedded demo (``demo``) the defaults
    ``NUM_LABELED``/``NUM_VAL``, which leave held-out cases to evaluate.
    """
    if demo:
        num_labeled, num_val = num_labeled or NUM_LABELED, num_val or NUM_VAL
    if num_val is None:
        num_val = min(8, max(1, len(datalist) // 4))
    if num_labeled is None:
        num_labeled = max(1, len(datalist) - num_val)
    for option, value in (("num_labeled", num_labeled), ("num_val", num_val)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"--{option} {value!r} is not a whole number >= 1.")
    needed = num_labeled + num_val
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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def file_stem(path: str | os.PathLike) -> str:
    """File name without its image suffix (``.nii.gz`` counts as one)."""
    name = os.path.basename(str(path))
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def load_folder_datalist(folder: str | os.PathLike, check_files: bool = True) -> list[dict[str, str]]:
    """Pairs from ``folder/images`` and ``folder/masks`` matched by file stem, sorted by stem.

    Images without a mask (and masks without an image) are an error naming them, not silently dropped.
    """
    root = Path(folder).expanduser()
    images = {
        file_stem(p): str(p.resolve())
        for p in sorted((root / "images").iterdir())
        if p.name.lower().endswith(IMAGE_SUFFIXES)
    }
    masks = {
        file_stem(p): str(p.resolve())
        for p in sorted((root / "masks").iterdir())
        if p.name.lower().endswith(IMAGE_SUFFIXES)
    }
    unpaired = [f"{root / 'images'}: {images[s]} has no mask" for s in sorted(set(images) - set(masks))]
    unpaired += [f"{root / 'masks'}: {masks[s]} has no image" for s in sorted(set(masks) - set(images))]
    if unpaired and check_files:
        raise FileNotFoundError("\n".join(unpaired))
    return [{"image": images[s], "label": masks[s]} for s in sorted(set(images) & set(masks))]


def load_datalist(source: str | os.PathLike, check_files: bool = True) -> list[dict[str, str]]:
    """Labelled cases from an MSD folder, an ``images/`` + ``masks/`` folder, or a datalist JSON file."""
    path = Path(source).expanduser()
    if path.is_file():
        return _load_json_datalist(path, check_files)
    if (path / "dataset.json").is_file():
        return load_msd_datalist(path, check_files=check_files)
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return load_folder_datalist(path, check_files=check_files)
    raise FileNotFoundError(
        f"{path}: not a dataset. Expected an MSD folder (dataset.json, imagesTr/, labelsTr/), a folder with "
        "images/ and masks/ sharing file stems, or a datalist JSON file."
    )


def _load_json_datalist(path: Path, check_files: bool) -> list[dict[str, str]]:
    try:
        content = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}).") from e
    if isinstance(content, list):
        content = {"training": content}
    if not isinstance(content, dict) or not isinstance(content.get("training"), list):
        raise ValueError(f"{path}: expected a list of {{image, label}} entries or a 'training' list of them.")
    return _resolve_entries(content["training"], path.parent, path, check_files)


def _resolve_entries(entries: list, root: Path, source: Path, check_files: bool) -> list[dict[str, str]]:
    """``{image, label}`` entries with paths resolved against ``root``; malformed entries and (with
    ``check_files``) every missing file are errors naming ``source``."""
    items, missing = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("image", "label")):
            raise ValueError(f'{source}: entry {i} is not {{"image": path, "label": path}}: {entry!r:.80}')
        item = {k: str((root / entry[k]).resolve()) for k in ("image", "label")}
        missing += [f"{source}: {k} file {p} does not exist" for k, p in item.items() if not os.path.exists(p)]
        items.append(item)
    if missing and check_files:
        raise FileNotFoundError("\n".join(missing))
    return items
