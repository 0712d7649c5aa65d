"""A training plan from the data, nnU-Net style: what a run on real data is sized by.

MONAI's :class:`~monai.apps.auto3dseg.DataAnalyzer` (what Auto3DSeg runs) fingerprints the labelled
cases: spacing, shape, how much of each image the foreground covers. From that fingerprint:

- target spacing (3D): the median spacing, made coarser on a CPU until a median volume holds at most
  :data:`MAX_VOLUME_VOXELS` voxels (nnU-Net's low-resolution stage does the same for large images);
- the patch: the whole median image where it fits in :data:`PATCH_VOXELS`, else the largest patch of the
  image's proportions that does (it is then cut around the foreground, :func:`.core._patch_sampling`);
  2D images are resized to it, so it is the training resolution;
- network depth (downsamplings until a 4-pixel bottleneck) and widths (doubling from nnU-Net's 32, capped; a
  CPU falls back to 16 where a 32-wide step would leave too few steps to converge);
- precision: bfloat16 autocast on a GPU, and on a CPU where it measures faster than float32 (AMX and
  AVX512-BF16 cores run it about twice as fast; elsewhere it is emulated and slower);
- batch, and the number of segmenter steps that fit ``time_budget_minutes`` on the device, from a
  measured step of that network.

The plan is printed before training and saved as ``models/plan.json``; evaluation, inference and a resumed
run read the sizes from it, so they always fit the weights.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from monai_genseg.atomic import atomic_write_text
from monai_genseg.bundle.recipes import Preset

logger = logging.getLogger("monai_genseg.plan")

PLAN_FILE = "plan.json"
# per device kind and spatial dims: the voxels of one patch, and of a whole resampled volume on a CPU
PATCH_VOXELS = {("cpu", 2): 256 * 256, ("cpu", 3): 64**3, ("cuda", 2): 512 * 512, ("cuda", 3): 128**3}
MAX_VOLUME_VOXELS = 8 * 64**3
BASE_WIDTH = 32  # nnU-Net's first width
CPU_FALLBACK_WIDTH = 16  # on a CPU where a 32-wide step leaves fewer than FEW_STEPS in the budget
MAX_WIDTH = {2: 512, 3: 320}
MAX_DOWNSAMPLINGS = {2: 6, 3: 5}
BATCH = {("cpu", 2): 8, ("cuda", 2): 16, ("cpu", 3): 2, ("cuda", 3): 2}  # 3D: patches per volume
VALIDATIONS = 20  # the budget is cut into this many epochs, each ending with a validation
EARLY_STOP_VALIDATIONS = 6  # stop after this many validations without a better Dice (30% of the budget)
MIN_STEPS, MAX_STEPS = VALIDATIONS, 100_000
FEW_STEPS = 1000  # fewer than this rarely converge (the hippocampus baseline still gains from 1600 to 4000)
# a CPU trains in bfloat16 where its measured step takes at most this share of the float32 step: a clear gain, not
# noise (AMX cores: 0.37-0.52 for the hippocampus and ISIC networks, benchmarks/cpu_precision.py; emulated bfloat16
# is slower than float32)
CPU_BF16_GAIN = 0.8
OVERHEAD = 0.9  # share of the budget left for steps, after caching, planning and validating
# a training step with its loading, augmentation and validation against the bare network step that is measured
# (2 CPU cores, data loaded in the training process: 1.0-1.3x; it was 1.5-1.9x with 2 loader processes); the
# run itself then fits its epochs to the budget (handlers.TimeBudget), so this only has to be close
PIPELINE_COST = 1.3
# a GenSeg step (end2end: generator every 2nd step, architecture every 4th) against a plain segmenter
# step: 3.4x on a CPU (benchmarks/step_cost.py, docs/method.md); the generator modes get fewer steps
GENERATOR_STEP_COST = 3.4


@dataclass(frozen=True)
class Fingerprint:
    """What the plan reads from the data (DataAnalyzer's summary)."""

    num_cases: int
    median_shape: tuple[float, ...]  # voxels, as stored
    median_spacing: tuple[float, ...]  # mm (1.0 for 2D images without spacing)
    foreground_fraction: float  # median share of an image that is foreground (any class)

    @property
    def spatial_dims(self) -> int:
        return len(self.median_shape)


def fingerprint(cases: Sequence[Mapping[str, Any]], spatial_dims: int, work_dir: str | None = None) -> Fingerprint:
    """DataAnalyzer's statistics of the labelled ``cases`` (``[{"image", "label"}, ...]``)."""
    from monai.apps.auto3dseg import DataAnalyzer

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        datalist = {"training": [{"image": c["image"], "label": c["label"], "fold": 0} for c in cases]}
        analyzer = DataAnalyzer(datalist, "", output_path=os.path.join(tmp, "datastats.yaml"), device="cpu", worker=0)
        stats = analyzer.get_all_case_stats()["stats_summary"]
    image = stats["image_stats"]
    shape = tuple(float(s) for s in image["shape"]["median"])[:spatial_dims]
    spacing = tuple(float(s) for s in image["spacing"]["median"])[:spatial_dims]
    background = float(stats["label_stats"]["label"][0]["foreground_percentage"]["median"])
    return Fingerprint(len(cases), shape, spacing, max(0.0, min(1.0, 1.0 - background)))


@dataclass(frozen=True)
class Plan:
    """The sizes of a planned run, and why: a :class:`Preset` plus what it was derived from."""

    preset: Preset
    fingerprint: Fingerprint | None
    device: str
    time_budget_minutes: float
    seconds_per_step: float
    mode: str
    reasons: tuple[str, ...]
    precision: str = "float32"  # of the training steps: "bfloat16" (autocast) or "float32"

    def to_json(self) -> str:
        out = asdict(self)
        out["preset"] = self.preset.as_config()
        return json.dumps(out, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "plan") -> Plan:
        raw = json.loads(text)
        fp = raw["fingerprint"]
        return cls(
            preset=preset_from_config(raw["preset"], source),
            fingerprint=None
            if fp is None
            else Fingerprint(**{k: tuple(v) if isinstance(v, list) else v for k, v in fp.items()}),
            device=raw["device"],
            time_budget_minutes=raw["time_budget_minutes"],
            seconds_per_step=raw["seconds_per_step"],
            mode=raw["mode"],
            reasons=tuple(raw["reasons"]),
            precision=raw.get("precision", "float32"),
        )

    def describe(self) -> str:
        p = self.preset
        size = "x".join(str(s) for s in p.patch_size)
        lines = [
            f"plan ({self.device}, {self.time_budget_minutes:g} min, mode {self.mode}):",
            *([f"  spacing {'x'.join(f'{s:g}' for s in p.pixdim)} mm"] if p.pixdim else []),
            f"  patch {size}, {p.samples_per_volume or p.batch_size} per step",
            f"  segmenter widths {list(p.segmenter_channels)}, {self.precision}",
            f"  {p.epoch_length * p.max_epochs} steps ({p.max_epochs} epochs of {p.epoch_length}, "
            f"{self.seconds_per_step:.3f} s each measured), lr warm-up {p.lr_warmup_iterations} then cosine decay",
            f"  early stop after {p.early_stop_patience} validations without a better Dice",
            *(f"  - {r}" for r in self.reasons),
        ]
        return "\n".join(lines)


def preset_from_config(values: Mapping[str, Any], source: str = "preset") -> Preset:
    """The :class:`Preset` a config dict (or a saved plan) states; keys this version does not know are an
    error that names ``source``: the sizes (and the weights) came from another monai-genseg version."""
    unknown = sorted(set(values) - set(Preset.ORDER))
    if unknown:
        raise ValueError(
            f"{source}: unknown size keys {unknown}, written by another monai-genseg version whose segmenter "
            "differs; regenerate the bundle (monai-genseg init) and train again"
        )
    return Preset(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def check_patch(preset: Mapping[str, Any], mode: str, source: str = "preset") -> None:
    """Refuse, before training, a patch the networks cannot halve as often as they do: the segmenter
    ``len(segmenter_channels) - 1`` times, and in the modes that make synthetic pairs the generator
    ``len(generator_channels)`` times. Plans are sized to fit; an edited named preset may not be."""
    from monai_genseg.engines import MODES

    patch = [int(p) for p in preset["patch_size"]]
    keys = ["segmenter_channels"] + (["generator_channels"] if MODES[mode].synthetic else [])
    need = {key: 2 ** (len(preset[key]) - (key == "segmenter_channels")) for key in keys}
    key = max(keys, key=need.get)  # powers of two: the deepest network's multiple suits them all
    if any(p % need[key] for p in patch):
        raise ValueError(
            f"{source}#patch_size {patch}: each side must be divisible by {need[key]} for {source}#{key} "
            f"{list(preset[key])} (mode {mode}), e.g. {list(_round_up(patch, need[key]))}; or give that network "
            "fewer levels"
        )


def _downsamplings(patch: Sequence[int], spatial_dims: int) -> int:
    """Stride-2 levels until the smallest side reaches 4 voxels (nnU-Net's bottleneck), at least 2."""
    return max(2, min(MAX_DOWNSAMPLINGS[spatial_dims], int(math.log2(max(1.0, min(patch) / 4)))))


def _round_up(values: Sequence[float], multiple: int) -> tuple[int, ...]:
    return tuple(max(multiple, multiple * math.ceil(v / multiple - 1e-6)) for v in values)


def size_network(
    fp: Fingerprint, device: str
) -> tuple[tuple[float, ...] | None, tuple[int, ...], tuple[int, ...], list[str]]:
    """Target spacing (3D), patch and segmenter widths (from :data:`BASE_WIDTH`) for ``fp`` on ``device``
    (``cpu`` or ``cuda``)."""
    d, kind = fp.spatial_dims, "cuda" if device.startswith("cuda") else "cpu"
    reasons = []
    spacing: tuple[float, ...] | None = None
    shape = list(fp.median_shape)
    if d == 3:
        spacing = tuple(fp.median_spacing)
        if kind == "cpu" and math.prod(shape) > MAX_VOLUME_VOXELS:
            factor = (math.prod(shape) / MAX_VOLUME_VOXELS) ** (1 / 3)
            spacing = tuple(round(s * factor, 3) for s in spacing)
            reasons.append(f"median volume coarsened {factor:.2f}x to fit a CPU ({MAX_VOLUME_VOXELS} voxels)")
        shape = [n * s0 / s for n, s0, s in zip(shape, fp.median_spacing, spacing)]
    cap = PATCH_VOXELS[(kind, d)]
    if math.prod(shape) > cap:
        shrink = (cap / math.prod(shape)) ** (1 / d)
        target = [n * shrink for n in shape]
        what = "2D images resized" if d == 2 else "patches cut"
        reasons.append(f"median image {'x'.join(f'{n:.0f}' for n in shape)} exceeds {cap} voxels: {what} to fit")
    else:
        target = shape
        reasons.append("the patch covers the whole median image")
    levels = _downsamplings(target, d)
    patch = _round_up(target, 2**levels)
    while math.prod(patch) > cap * 1.5 and min(patch) > 2**levels:  # rounding up overshot a small cap
        patch = tuple(p - 2**levels if p == max(patch) else p for p in patch)
    extent = [n * fp.foreground_fraction ** (1 / d) for n in target]
    reasons.append(
        f"median foreground about {'x'.join(f'{e:.0f}' for e in extent)} voxels at this size "
        f"({100 * fp.foreground_fraction:.1f}% of an image)"
    )
    if min(extent) < 8:
        reasons.append("the foreground is under 8 voxels across at this size: expect a low Dice")
    return spacing, patch, _widths(BASE_WIDTH, levels + 1, d), reasons


def _widths(base: int, levels: int, spatial_dims: int) -> tuple[int, ...]:
    return tuple(min(MAX_WIDTH[spatial_dims], base * 2**k) for k in range(levels))


def measure_step_seconds(
    spatial_dims: int,
    in_channels: int,
    num_classes: int,
    preset: Preset,
    device: torch.device,
    bf16: bool = False,
    steps: int = 3,
) -> float:
    """Seconds of one segmenter training step (forward, DiceCE with deep supervision, backward, Adam) of
    ``preset``'s network on random data, after a warm-up step, in float32 or under bfloat16 autocast
    (``bf16``): what the plan divides its time budget by."""
    from monai.losses import DiceCELoss

    from monai_genseg.losses import DeepSupervisedLoss
    from monai_genseg.networks import segmenter

    net = segmenter(spatial_dims, in_channels, num_classes, preset.segmenter_channels).to(device)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    loss = DeepSupervisedLoss(DiceCELoss(to_onehot_y=True, softmax=True))
    batch = preset.samples_per_volume or preset.batch_size or 1
    x = torch.rand(batch, in_channels, *preset.patch_size, device=device)
    y = torch.randint(0, num_classes, (batch, 1, *preset.patch_size), device=device)
    elapsed = 0.0
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            value = loss(net(x), y)
        value.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed += (time.perf_counter() - start) if i else 0.0
    return elapsed / steps


def make_plan(
    fp: Fingerprint,
    demo: Preset,
    device: torch.device | str,
    time_budget_minutes: float,
    mode: str,
    in_channels: int,
    num_classes: int,
    seconds_per_step: float | Callable[[Preset, bool], float] | None = None,
    amp: bool = True,
) -> Plan:
    """The plan for fingerprint ``fp``. ``seconds_per_step(preset, bf16)`` is a training step's cost, measured on
    ``device`` unless given (a number: every candidate costs that). ``amp`` allows bfloat16 autocast (the
    bundles' ``--amp``): always taken on a GPU, on a CPU only where it measures faster than float32."""
    device = torch.device(device)
    spacing, patch, widths, reasons = size_network(fp, device.type)
    d, kind = fp.spatial_dims, "cuda" if device.type == "cuda" else "cpu"
    batch = BATCH[(kind, d)]

    def sized(w: tuple[int, ...], cpu_bf16: bool | None) -> Preset:
        return replace(
            demo,
            pixdim=spacing,
            patch_size=patch,
            segmenter_channels=w,
            generator_channels=tuple(w[: min(4, len(w) - 1)]),  # its downsamplings must divide the patch
            discriminator_channels=w[0],
            samples_per_volume=batch if d == 3 else None,
            batch_size=batch if d == 2 else None,
            cpu_bf16=cpu_bf16,
        )

    measured: dict[tuple[tuple[int, ...], bool], float] = {}

    def cost(w: tuple[int, ...], bf16: bool) -> float:
        if (w, bf16) not in measured:
            if seconds_per_step is None:
                seconds = measure_step_seconds(d, in_channels, num_classes, sized(w, None), device, bf16=bf16)
            else:
                seconds = seconds_per_step(sized(w, None), bf16) if callable(seconds_per_step) else seconds_per_step
            measured[(w, bf16)] = float(seconds)
        return measured[(w, bf16)]

    factor = PIPELINE_COST * (1.0 if mode == "baseline" else GENERATOR_STEP_COST)

    def fitting(seconds: float) -> int:
        return int(time_budget_minutes * 60 * OVERHEAD / (seconds * factor))

    bf16 = bool(amp) and kind == "cuda"
    if kind == "cpu":
        narrow = _widths(CPU_FALLBACK_WIDTH, len(widths), d)
        if amp:  # compared on the narrow network, the quicker one to measure
            single, half = cost(narrow, False), cost(narrow, True)
            bf16 = half <= CPU_BF16_GAIN * single
            reasons.append(
                f"a step {half:.3f} s in bfloat16 against {single:.3f} s in float32 on this CPU: "
                + ("bfloat16 autocast" if bf16 else "float32")
            )
        if fitting(cost(widths, bf16)) < FEW_STEPS:
            reasons.append(
                f"{widths[0]}-wide fits only {fitting(cost(widths, bf16))} steps on this CPU: {narrow[0]}-wide instead"
            )
            widths = narrow
    step_seconds = cost(widths, bf16)
    steps = fitting(step_seconds)
    if steps < MIN_STEPS:
        reasons.append(f"{time_budget_minutes:g} min fit only {steps} steps: raised to {MIN_STEPS}")
    elif steps < FEW_STEPS:
        reasons.append(f"{steps} steps may be too few to converge: raise --time_budget_minutes")
    steps = max(MIN_STEPS, min(MAX_STEPS, steps))
    if mode != "baseline":
        reasons.append(f"mode {mode}: a GenSeg step costs about {GENERATOR_STEP_COST:g} plain steps")
    epoch_length = max(1, steps // VALIDATIONS)
    preset = replace(
        sized(widths, bf16 if kind == "cpu" else None),
        epoch_length=epoch_length,
        max_epochs=VALIDATIONS,
        lr_warmup_iterations=max(1, steps // 20),
        early_stop_patience=EARLY_STOP_VALIDATIONS,
        generator_warmup_iterations=min(2000, steps // 4),
        syn_rampup_iterations=min(1000, steps // 10),
    )
    return Plan(
        preset,
        fp,
        str(device),
        float(time_budget_minutes),
        round(step_seconds, 4),
        mode,
        tuple(reasons),
        "bfloat16" if bf16 else "float32",
    )


def preset_for_run(
    scale: str,
    presets: Mapping[str, Mapping[str, Any]],
    ckpt_dir: str,
    *,
    is_demo: bool = False,
    cases: Sequence[Mapping[str, Any]] = (),
    spatial_dims: int = 3,
    in_channels: int = 1,
    num_classes: int = 2,
    device: torch.device | str = "cpu",
    time_budget_minutes: float = 15,
    mode: str = "baseline",
    replan: bool = False,
    amp: bool = True,
) -> dict[str, Any]:
    """The preset (as a config dict) this run uses, and ``models/plan.json`` saying so.

    ``--scale auto`` (the default): the embedded demo trains with ``demo``; real data with a plan made
    from it (``replan``, a fresh training run) or the one saved by the run that trained the weights
    (evaluation, inference, resume). A named preset is used as it is; ``demo`` on real data is too small
    to converge and says so loudly. ``amp`` (the bundles' ``--amp``) allows bfloat16 autocast.
    """
    path = Path(ckpt_dir) / PLAN_FILE
    kind = torch.device(device).type
    autocast = amp and (kind == "cuda" or (kind == "cpu" and bool(presets.get(scale, {}).get("cpu_bf16"))))
    named = "bfloat16" if autocast else "float32"  # a named preset's precision, as the trainer will run it
    if scale != "auto":
        if scale == "demo" and not is_demo and replan:
            logger.warning(
                "\n" + "!" * 78 + "\n--scale demo trains a smoke-test budget sized for the embedded demo data; on "
                "real data it\nstops long before it converges. Leave --scale out for a plan sized from your data.\n"
                + "!"
                * 78
            )
        chosen = dict(presets[scale])
        if replan:
            check_patch(chosen, mode, f"presets#{scale}")
            reason = (f"preset {scale}",)
            _save(path, Plan(preset_from_config(chosen), None, str(device), 0.0, 0.0, mode, reason, named))
        return chosen
    if not replan:
        if path.is_file():
            return Plan.from_json(path.read_text(), str(path)).preset.as_config()
        if "demo" not in presets:
            raise FileNotFoundError(
                f"{path}: no training plan, so the network's sizes are unknown; train first, or pass the --scale "
                "the weights were trained with"
            )
        if not is_demo:  # a bundle with no training yet (MONAI Label loads inference first): the demo's sizes
            logger.info(f"no {path}: the demo preset's sizes (pass the --scale the weights were trained with)")
        return dict(presets["demo"])
    if is_demo:
        logger.info("--scale auto on the embedded demo data: the demo preset")
        chosen = dict(presets["demo"])
        check_patch(chosen, mode, "presets#demo")
        reason = ("the embedded demo",)
        _save(path, Plan(preset_from_config(chosen), None, str(device), 0.0, 0.0, mode, reason, named))
        return chosen

    def plan_here() -> Plan:
        fp = fingerprint(cases, spatial_dims, work_dir=str(path.parent) if path.parent.is_dir() else None)
        demo = preset_from_config(presets["demo"])
        return make_plan(fp, demo, device, time_budget_minutes, mode, in_channels, num_classes, amp=amp)

    plan = _from_rank_zero(plan_here)
    logger.info(plan.describe())
    _save(path, plan)
    return plan.preset.as_config()


def _from_rank_zero(make: Callable[[], Plan]) -> Plan:
    """``make()`` on rank 0, shared with every rank of a distributed run: a plan is timed, and ranks that timed
    their own would train networks of other widths or other step counts, which averaged gradients cannot mix."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return make()
    box = [make() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _save(path: Path, plan: Plan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, plan.to_json() + "\n")
