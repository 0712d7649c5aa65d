"""Per-case metrics of an evaluation run, written as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor

from monai_genseg.atomic import atomic_write_text


def finite_mean(values: list[float]) -> float:
    """The mean of the finite values: a class with no Dice (empty reference) or an infinite HD95 (nothing
    predicted) is left out rather than counted as 0, 1 or infinity; NaN if none is finite."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Each metric column of per-case ``rows`` as its mean, standard deviation and ``n`` over the cases where
    it is finite: the summary of ``metrics.json``, shared with anything else that scores predictions."""
    summary = {}
    for col in list(rows[0])[1:] if rows else []:
        if col.startswith("reference_empty_"):
            continue
        vals = [r[col] for r in rows if math.isfinite(r[col])]
        mean = finite_mean(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) if vals else float("nan")
        summary[col] = {"mean": mean, "std": std, "n": len(vals)}
    return summary


class CaseMetricsWriter:
    """After an evaluator run, write one row per case with each metric per foreground class and their mean.

    It reads ``engine.state.metric_details`` (metrics attached with ``save_details=True``) and the case
    file names from the image meta data. Writes ``<output_dir>/metrics_per_case.csv`` and
    ``metrics.json`` (per-case rows plus the mean and standard deviation over cases).

    A case whose reference has none of a class (a normal breast ultrasound, an ulcer-free photograph) has
    no Dice for it (MONAI's ``ignore_empty``), so it neither counts as 0 nor as 1 in the mean; it is
    reported apart instead: ``empty_reference_<class>`` gives how many there were and how many of them the
    model also left empty (``predicted_empty``), and each row says ``reference_empty_<class>``.

    Args:
        output_dir: folder to write to.
        class_names: names of the foreground classes, in channel order.
    """

    def __init__(self, output_dir: str | os.PathLike, class_names: list[str]) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names)
        self._cases: list[str] = []
        self._empty: list[list[bool | None]] = []  # per case, per class: reference empty -> prediction empty?
        self.logger = logging.getLogger("CaseMetricsWriter")

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect_names)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self._cases.clear()
        self._empty.clear()

    def _collect_names(self, engine: Engine) -> None:
        self._collect_empty(engine.state.output)
        batch = engine.state.batch
        image = batch[0]["image"] if isinstance(batch, list) else batch["image"]
        names = image.meta.get("filename_or_obj") if isinstance(image, MetaTensor) else None
        if names is None:
            names = [f"case_{len(self._cases)}"]
        self._cases.extend([names] if isinstance(names, str) else list(names))

    def _collect_empty(self, output) -> None:
        """For each item and foreground class: None if the reference has that class, else whether the
        prediction is empty too (one-hot ``pred`` and ``label``, as the evaluator's postprocessing leaves them)."""
        items = output if isinstance(output, list) else [output] if isinstance(output, dict) else []
        for item in items:
            pred, label = item.get("pred"), item.get("label")
            if pred is None or label is None or pred.shape[0] != len(self.class_names) + 1:
                self._empty.append([None] * len(self.class_names))
                continue
            self._empty.append(
                [None if label[c].any() else not bool(pred[c].any()) for c in range(1, len(self.class_names) + 1)]
            )

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
                row[f"{metric}_mean"] = finite_mean(per_class)
            empty = self._empty[i] if i < len(self._empty) else [None] * len(self.class_names)
            for name, predicted_empty in zip(self.class_names, empty):
                row[f"reference_empty_{name}"] = predicted_empty is not None
            rows.append(row)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        columns = list(rows[0]) if rows else ["case"]
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.output_dir / "metrics_per_case.csv", table.getvalue())
        summary = summarise(rows)
        for c, name in enumerate(self.class_names):
            seen = [e[c] for e in self._empty if e[c] is not None]
            if seen:
                summary[f"empty_reference_{name}"] = {"n": len(seen), "predicted_empty": sum(seen)}
        atomic_write_text(self.output_dir / "metrics.json", json.dumps({"summary": summary, "cases": rows}, indent=4))
        self.logger.info(f"wrote metrics of {len(rows)} cases to {self.output_dir}")
