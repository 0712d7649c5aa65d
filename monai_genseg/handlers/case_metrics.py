"""Per-case metrics of an evaluation run, written as CSV and JSON."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor


class CaseMetricsWriter:
    """After an evaluator run, write one row per case with each metric per foreground class and their mean.

    It reads ``engine.state.metric_details`` (metrics attached with ``save_details=True``) and the case
    file names from the image meta data. Writes ``<output_dir>/metrics_per_case.csv`` and
    ``metrics.json`` (per-case rows plus the mean and standard deviation over cases).

    Args:
        output_dir: folder to write to.
        class_names: names of the foreground classes, in channel order.
    """

    def __init__(self, output_dir: str | os.PathLike, class_names: list[str]) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names)
        self._cases: list[str] = []
        self.logger = logging.getLogger("CaseMetricsWriter")

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda e: self._cases.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect_names)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _collect_names(self, engine: Engine) -> None:
        batch = engine.state.batch
        image = batch[0]["image"] if isinstance(batch, list) else batch["image"]
        names = image.meta.get("filename_or_obj") if isinstance(image, MetaTensor) else None
        if names is None:
            names = [f"case_{len(self._cases)}"]
        self._cases.extend([names] if isinstance(names, str) else list(names))

    def __call__(self, engine: Engine) -> None:
        details = {k: torch.as_tensor(v).float().cpu() for k, v in engine.state.metric_details.items()}
        if not details:
            raise RuntimeError("CaseMetricsWriter found no metric details; attach metrics with save_details=True.")
        rows = []
        for i, case in enumerate(self._cases):
            row: dict = {"case": os.path.basename(str(case))}
            for metric, values in details.items():
                per_class = values[i].reshape(-1).tolist()
                for name, v in zip(self.class_names, per_class):
                    row[f"{metric}_{name}"] = v
                finite = [v for v in per_class if math.isfinite(v)]
                row[f"{metric}_mean"] = sum(finite) / len(finite) if finite else float("nan")
            rows.append(row)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        columns = list(rows[0]) if rows else ["case"]
        with open(self.output_dir / "metrics_per_case.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        summary = {}
        for col in columns[1:]:
            vals = [r[col] for r in rows if math.isfinite(r[col])]
            mean = sum(vals) / len(vals) if vals else float("nan")
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) if vals else float("nan")
            summary[col] = {"mean": mean, "std": std, "n": len(vals)}
        with open(self.output_dir / "metrics.json", "w") as f:
            json.dump({"summary": summary, "cases": rows}, f, indent=4, allow_nan=True)
        self.logger.info(f"wrote metrics of {len(rows)} cases to {self.output_dir}")
