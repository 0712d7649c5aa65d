"""``train_stats.json``: training progress where MONAI Label's trainers keep it, for its clients."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from monai_genseg.atomic import atomic_write_text


class TrainStatsWriter:
    """After each epoch, write ``path`` in the layout of MONAI Label's ``BasicTrainTask`` (``epoch``,
    ``start_ts``, ``total_time`` or ``current_time``, ``best_metric``, and ``train``/``eval`` sections with
    the metrics and the best epoch), plus the generator's genotype, so a client can show progress and
    accuracy. The file is replaced atomically: a client reading it mid-write sees the previous epoch's.
    """

    def __init__(self, path: str, evaluator: Engine | None = None, generator=None) -> None:
        self.path, self.evaluator, self.generator = Path(path), evaluator, generator
        self.start = time.time()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _started(self, engine: Engine) -> None:
        self.start = time.time()

    def __call__(self, engine: Engine) -> None:
        spent = str(datetime.timedelta(seconds=int(time.time() - self.start)))
        done = engine.state.epoch >= (engine.state.max_epochs or 0)
        stats: dict = {"epoch": engine.state.epoch, "start_ts": int(self.start)}
        stats["total_time" if done else "current_time"] = spent
        for name, source in (("train", engine), ("eval", self.evaluator)):
            if source is None:
                continue
            state = source.state
            stats[name] = {
                "metrics": {k: _plain(v) for k, v in state.metrics.items()},
                "key_metric_name": getattr(state, "key_metric_name", None),
                "best_metric": _plain(getattr(state, "best_metric", None)),
                "best_metric_epoch": getattr(state, "best_metric_epoch", None),
            }
            stats["best_metric"] = stats[name]["best_metric"]
        if self.generator is not None and hasattr(self.generator, "genotype"):
            stats["genotype"] = list(self.generator.genotype())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(stats, indent=2) + "\n")


def _plain(value):
    """A JSON value of a metric: tensors as lists, non-finite numbers as None."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, float) and value != value:
        return None
    return value
