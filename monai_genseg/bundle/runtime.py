"""What the bundle configs call at run time (as ``monai_genseg.bundle.<name>``): where outputs go, which cases
to train, evaluate and infer on, which handlers a rank runs."""

from __future__ import annotations

import ast
import glob
import os
import sys
import tempfile
from pathlib import Path

from monai_genseg.data.datalist import IMAGE_SUFFIXES, file_stem

IMAGE_PATTERNS = tuple(f"*{suffix}" for suffix in IMAGE_SUFFIXES)


def default_bundle_root(argv: list[str] | None = None) -> str:
    """Where a bundle run writes ``models/`` and ``eval/`` unless ``--bundle_root`` says.

    The folder that holds the ``configs/`` of the config file on the command line
    (``python -m monai.bundle run --config_file bundles/NAME/configs/train.yaml``): a bundle keeps its
    outputs beside its configs wherever it was written. Otherwise (a config read by other code) the
    working directory, as MONAI's own bundles do.
    """
    for path in _config_files(sys.argv if argv is None else argv):
        folder = Path(os.path.abspath(os.path.expanduser(path))).parent
        if folder.name == "configs":
            return str(folder.parent)
    return os.getcwd()


def _config_files(argv: list[str]) -> list[str]:
    """The paths given to ``--config_file`` (or ``--config-file``): one path (spaces allowed), a list such as
    ``"['a.yaml','b.yaml']"``, or comma-separated paths, as MONAI's runner reads them."""
    values = []
    for k, arg in enumerate(argv):
        name, _, inline = arg.partition("=")
        if name in ("--config_file", "--config-file"):
            values.append(inline if inline else argv[k + 1] if k + 1 < len(argv) else "")
    files: list[str] = []
    for value in values:
        value = value.strip()
        if value.startswith("["):
            try:
                files += [str(v) for v in ast.literal_eval(value)]
                continue
            except (ValueError, SyntaxError):
                value = value.strip("[]")
        files += [value] if os.path.exists(value) or "," not in value else [v.strip(" '\"") for v in value.split(",")]
    return [f for f in files if f.endswith((".yaml", ".yml", ".json"))]


def image_files(folder: str | os.PathLike) -> list[dict[str, str]]:
    """``[{"image": path}, ...]`` for the images in ``folder`` (or its ``imagesTs/`` or ``images/``), sorted."""
    root = Path(folder).expanduser()
    for sub in ("imagesTs", "images"):
        if (root / sub).is_dir():
            root = root / sub
            break
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of images to run inference on.")
    files = sorted({f for p in IMAGE_PATTERNS for f in glob.glob(str(root / p))})
    if not files:
        raise FileNotFoundError(f"{root}: no images ({', '.join(IMAGE_PATTERNS)}) to run inference on.")
    return [{"image": f} for f in files]


def cases_to_evaluate(split: dict[str, list], eval_dataset_dir: str | None = None) -> list[dict]:
    """Labelled cases for ``evaluate.yaml``: all of ``eval_dataset_dir`` if given, else the split's held-out
    test cases."""
    from monai_genseg.data import load_datalist

    if eval_dataset_dir:
        return load_datalist(eval_dataset_dir)
    if not split["test"]:
        raise ValueError(
            "no held-out cases to evaluate: every labelled case is used for training or validation. "
            "Pass --eval_dataset_dir with an MSD-layout folder of test cases."
        )
    return split["test"]


def cases_to_check(train: list[dict], val: list[dict]) -> list[dict]:
    """The cases a training run reads, each once: the validation cases that ``train_on_val`` put into training
    are the same entries, and only a file listed twice in the data is a duplicate."""
    in_training = {id(t) for t in train}
    return train + [c for c in val if id(c) not in in_training]


def choose(option: str, value: str, choices: dict):
    """``choices[value]`` for a string option such as ``augmentation``, or one line naming the option."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"--{option} {value!r} is not one of {sorted(choices)}.")
    return choices[value]


def training_cases(split: dict[str, list], mode: str, train_on_val: object = "auto") -> list[dict]:
    """The real training cases: the split's training cases, plus its validation cases with ``train_on_val``
    (``auto``: in ``baseline`` mode).

    Only ``baseline`` may train on its validation cases: a user without GenSeg would not hold labels
    back, while the generator's modes read them in the feedback loop (end2end).
    """
    on_val = mode == "baseline" if train_on_val == "auto" else flag("train_on_val", train_on_val)
    if on_val and mode != "baseline":
        raise ValueError(
            f"--train_on_val true is for --mode baseline only; mode '{mode}' keeps the validation cases apart."
        )
    return split["train"] + (split["val"] if on_val else [])


def resolve_mode(mode: str, is_demo: bool) -> str:
    """``--mode auto`` (the default): GenSeg (``end2end``) on the embedded demo, which shows the method;
    the plain segmenter (``baseline``) on real data, where GenSeg has not yet beaten it in this project's
    studies (docs/low_data_study.md): ``--mode end2end`` asks for the generator."""
    if mode != "auto":
        return mode
    chosen = "end2end" if is_demo else "baseline"
    if not is_demo:
        import logging

        logging.getLogger("monai_genseg").info(
            "--mode auto on real data: baseline (the plain segmenter on every labelled case); GenSeg has not "
            "beaten it in docs/low_data_study.md, pass --mode end2end to train with the generator"
        )
    return chosen


def checkpoint_to_evaluate(ckpt_dir: str, which: str) -> str:
    """``model``: ``model.pt``, the weights the run selected (``--model_selection``: final by default, or the
    best validation Dice); ``final``: the segmenter in ``genseg_checkpoint.pt`` at the end of training."""
    return os.path.join(
        ckpt_dir, choose("eval_checkpoint", which, {"model": "model.pt", "final": "genseg_checkpoint.pt"})
    )


def demo_test_images(task: str, seed: int = 0) -> list[dict[str, str]]:
    """The demo dataset's images that the default split holds out from training and validation."""
    from monai_genseg.data import NUM_LABELED, NUM_VAL, demo_dataset, load_datalist, split_cases

    root = demo_dataset(task, seed=seed)
    split = split_cases(load_datalist(root), NUM_LABELED, NUM_VAL, seed, source=root)
    return [{"image": case["image"]} for case in split["test"]]


def check_prediction_targets(
    datalist: list[dict], output_dir: str, postfix: str, ext: str, overwrite: bool = False
) -> None:
    """Before inference starts: refuse to write over an input, over an earlier prediction (unless
    ``overwrite``), or twice to one file (two inputs with the same name). Lists every clash at once."""
    problems, seen = [], {}
    inputs = {os.path.realpath(d["image"]) for d in datalist}
    for item in datalist:
        target = os.path.realpath(os.path.join(output_dir, f"{file_stem(item['image'])}_{postfix}{ext}"))
        if target in inputs:
            problems.append(f"{item['image']}: its prediction {target} would overwrite an input image")
        elif target in seen:
            problems.append(f"{item['image']}: its prediction {target} would overwrite that of {seen[target]}")
        elif os.path.exists(target) and not flag("overwrite", overwrite):
            problems.append(
                f"{item['image']}: prediction {target} exists already (pass --overwrite true to replace it)"
            )
        seen[target] = item["image"]
    if problems:
        raise FileExistsError("refusing to overwrite files:\n" + "\n".join(problems))


def handlers_for_rank(handlers: list, rank: int) -> list:
    """Rank 0 runs every handler; the other ranks only those that must run on every replica: validation,
    whose metric is reduced across ranks, loading weights (the CheckpointLoader MONAI Label prepends,
    and AtomicCheckpointSaver's resume; it writes on rank 0 only), the learning-rate schedule, which every
    replica's optimizer follows, the generator's warm-up, whose gradients are averaged across ranks, and the
    time budget, which ends every replica's training at the same epoch."""
    from monai.handlers import CheckpointLoader, LrScheduleHandler, ValidationHandler

    from monai_genseg.handlers import AtomicCheckpointSaver, GeneratorWarmup, TimeBudget

    every_rank = (
        ValidationHandler,
        CheckpointLoader,
        AtomicCheckpointSaver,
        LrScheduleHandler,
        GeneratorWarmup,
        TimeBudget,
    )
    return list(handlers) if rank == 0 else [h for h in handlers if isinstance(h, every_rank)]


FLAG_WORDS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False, "off": False}


def flag(option: str, value: object) -> bool:
    """A run option's boolean: ``true``/``false`` (also yes/no, 1/0, on/off, any case), or one line naming it.

    MONAI's runner hands ``--overwrite false`` over as the string "false", which Python counts as true.
    """
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in FLAG_WORDS:
        raise ValueError(f"--{option} {value!r} is not true or false (also accepted: yes/no, 1/0, on/off).")
    return FLAG_WORDS[word]


def whole(option: str, value: object, minimum: int = 0) -> int:
    """A run option's whole number >= ``minimum``, or one line naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"--{option} {value!r} is not a whole number >= {minimum}.")
    return value


def default_workers(device: object = None) -> int:
    """Data-loading processes per training process on ``device`` (default: CUDA if there is one): none on a
    CPU; on a GPU half the CPUs this process may use, 2 to 8.

    On a CPU the step's own threads already use every core, and loader processes preempt them: on 2 cores
    with 2 workers the hippocampus plan trained 0.40 s a step against 0.25 s loading in the main process,
    ISIC 1.5 s against 0.73 s (validation included). A GPU step of a small network takes about 10 ms, so
    2 workers starve it (an H200 ran the hippocampus plan at 0.08 s a step with 2). Caching the datasets
    before training uses threads of its own (every CPU), whatever this says.
    """
    import torch

    on_cpu = not torch.cuda.is_available() if device is None else torch.device(device).type == "cpu"
    if on_cpu:
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    return min(8, max(2, cpus // 2))


def needs_skimage(largest_component: object) -> bool:
    """``--largest_component``'s value; on, it needs scikit-image (MONAI's connected components on a CPU)."""
    import importlib.util

    on = flag("largest_component", largest_component)
    if on and importlib.util.find_spec("skimage") is None:
        raise ValueError("--largest_component true needs scikit-image: pip install scikit-image")
    return on


def positive(option: str, value: object) -> float:
    """A run option's number > 0, or one line naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"--{option} {value!r} is not a number > 0.")
    return float(value)


def start_run(
    bundle_root: str,
    mode: str,
    scale: str,
    presets: dict,
    resume: object = False,
    overwrite: object = False,
    seed: object = 0,
    train_on_val: object = "auto",
    amp: object = True,
    model_selection: str = "final",
    time_budget_minutes: object = 15,
    tta: object = True,
    largest_component: object = False,
) -> None:
    """The first thing a training run does: check every run option at once, one line each, then hold
    ``bundle_root`` for this run (which also proves it writable), turn errors into one line, and let
    SIGTERM unwind like Ctrl-C so no partial file is left."""
    from monai_genseg import errors
    from monai_genseg.engines.genseg_trainer import MODES
    from monai_genseg.runlock import acquire_run_lock

    errors.install(resumable=True)
    problems = []
    checks = [
        lambda: mode == "auto" or choose("mode", mode, MODES),
        lambda: choose("scale", scale, {"auto": 0, **presets}),
        lambda: flag("resume", resume),
        lambda: flag("overwrite", overwrite),
        lambda: train_on_val == "auto" or flag("train_on_val", train_on_val),
        lambda: flag("amp", amp),
        lambda: whole("seed", seed),
        lambda: choose("model_selection", model_selection, {"final": 0, "best": 0}),
        lambda: positive("time_budget_minutes", time_budget_minutes),
        lambda: flag("tta", tta),
        lambda: needs_skimage(largest_component),
    ]
    for check in checks:
        try:
            check()
        except ValueError as e:
            problems.append(str(e))
    if problems:
        raise ValueError("\n".join(problems))
    if not _other_rank():
        acquire_run_lock(bundle_root)


def _other_rank() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_rank() > 0


def start_inference(
    output_dir: str,
    scale: str,
    presets: dict,
    overwrite: object = False,
    tta: object = True,
    largest_component: object = False,
) -> None:
    """The first thing inference does: check its options, turn errors into one line, and prove ``output_dir``
    writable before the first scan is segmented (not when the first prediction is saved)."""
    from monai_genseg import errors

    errors.install()
    choose("scale", scale, {"auto": 0, **presets})
    flag("overwrite", overwrite)
    flag("tta", tta)
    needs_skimage(largest_component)
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write_probe"):
            pass
    except OSError as e:
        raise OSError(
            f"{output_dir}: cannot write predictions there ({e.strerror or e}); pass another --output_dir"
        ) from e
