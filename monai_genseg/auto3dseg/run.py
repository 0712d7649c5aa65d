"""What the ``genseg`` algorithm's scripts run: training one fold, and inference for the ensemble."""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import yaml
from ignite.engine import Engine, Events
from monai.auto3dseg.utils import datafold_read
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.transforms import Invertd

from monai_genseg.atomic import atomic_write_text

MULTI_GPU_OVERLAY = "multi_gpu/multi_gpu_train.yaml"


def fold_split(datalist: str, dataroot: str, fold: int) -> dict[str, list[dict]]:
    """Auto3DSeg's cross-validation split: cases of ``fold`` validate (and drive the architecture step), the
    rest train."""
    train, val = datafold_read(datalist, dataroot, fold=fold)
    if not val:
        raise ValueError(
            f"{datalist}: no training case has 'fold': {fold}; Auto3DSeg's AutoRunner adds folds, or add them yourself"
        )
    return {"train": train, "val": val}


class ProgressWriter:
    """Append ``{best_avg_dice_score, best_metric_epoch, ...}`` to ``progress.yaml`` each time the evaluator's key
    metric improves, as Auto3DSeg's templates do; ``BundleAlgo.get_score`` reads the last entry."""

    def __init__(self, path: str | os.PathLike, model_path: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.model_path = None if model_path is None else str(model_path)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if engine.state.best_metric_epoch != engine.state.epoch:
            return
        entries = yaml.safe_load(self.path.read_text()) if self.path.is_file() else []
        entries.append(
            {
                "best_avg_dice_score": float(engine.state.best_metric),
                "best_metric_epoch": int(engine.state.best_metric_epoch),
                "best_metric_model": self.model_path,
                "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        atomic_write_text(
            self.path, yaml.safe_dump(entries, sort_keys=False)
        )  # a crash mid-write leaves the previous one


def _unflatten_list(value):
    """AutoRunner passes a list training parameter as the string ``'a,b,c'``; give the list back."""
    if not isinstance(value, str) or "," not in value:
        return value
    try:
        return [ast.literal_eval(part.strip()) for part in value.split(",")]
    except (ValueError, SyntaxError):
        return value


def train(config_file: str | Sequence[str], **override) -> None:
    """Train one fold from its filled ``hyper_parameters.yaml``; under ``torchrun`` the multi-GPU overlay is merged."""
    files = [config_file] if isinstance(config_file, str) else list(config_file)
    override = {k: _unflatten_list(v) for k, v in override.items()}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        files.append(str(Path(files[0]).resolve().parents[1] / MULTI_GPU_OVERLAY))
    workflow = ConfigWorkflow(config_file=files, workflow_type="train", **override)
    workflow.initialize()
    workflow.run()
    workflow.finalize()


class InferClass:
    """Auto3DSeg's inference interface for one trained fold: ``infer(image_file)`` gives class probabilities
    ``(num_classes, *spatial)`` in the input image's own grid, which the ensemble averages or votes on."""

    def __init__(self, config_file: str | Sequence[str], **override) -> None:
        files = (
            [config_file]
            if isinstance(config_file, str)
            else [f for f in config_file if str(f).endswith((".yaml", ".json"))]
        )
        parser = ConfigParser()
        parser.read_config(files)
        parser.update({"replan": False, **override})  # the sizes the fold trained with, from its plan.json
        self.device = parser.get_parsed_content("device")
        self.network = parser.get_parsed_content("network")
        checkpoint = Path(parser.get_parsed_content("ckpt_path")) / "model.pt"
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: no trained model for this fold; train it first")
        state = torch.load(checkpoint, map_location=self.device, weights_only=True)
        self.network.load_state_dict(state.get("model", state))  # the bundles' model.pt is the bare state dict
        self.network.eval()
        self.preprocessing = parser.get_parsed_content("infer#preprocessing")
        self.inferer = parser.get_parsed_content("infer#inferer")
        self.invert = Invertd(keys="pred", transform=self.preprocessing, orig_keys="image", nearest_interp=False)

    @torch.no_grad()
    def infer(self, image_file: str | dict) -> torch.Tensor:
        """``image_file``: a path, or the ``{"image": path}`` item of a datalist (what the ensemble passes)."""
        data = self.preprocessing({"image": image_file["image"] if isinstance(image_file, dict) else image_file})
        logits = self.inferer(data["image"].unsqueeze(0).to(self.device), self.network)[0]
        data["pred"] = torch.softmax(logits.float(), dim=0).cpu()
        return self.invert(data)["pred"]
