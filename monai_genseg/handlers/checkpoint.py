"""Checkpoints written atomically, in the format MONAI's ``CheckpointLoader`` reads."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from ignite.engine import Engine, Events


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, flushed to disk, then renamed over ``path``.

    A reader (or a resumed run after a crash) sees the old file or the new one, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class AtomicCheckpointSaver:
    """Save ``{name: obj.state_dict()}`` of ``save_dict`` atomically to ``save_dir/filename``.

    A single entry is saved unwrapped (its bare ``state_dict``), as ignite and the model zoo do for
    ``models/model.pt``. Either saves every ``interval`` epochs and at completion (training), or,
    with ``save_key_metric=True``, whenever the engine's key metric reaches a new best (validation).

    Args:
        save_dir: folder of the checkpoint.
        save_dict: objects with ``state_dict()``: networks, optimizers, the trainer itself.
        filename: file name inside ``save_dir``.
        interval: epochs between saves (ignored with ``save_key_metric``).
        save_key_metric: save on a new best key metric instead of on an interval.
        engine_key: also save the state of the engine this handler is attached to (iteration, epoch)
            under this name, e.g. ``"trainer"``, so a run can resume. A config cannot list the trainer
            in ``save_dict`` of one of its own handlers without a circular reference.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        save_dict: Mapping[str, object],
        filename: str = "checkpoint.pt",
        interval: int = 1,
        save_key_metric: bool = False,
        engine_key: str | None = None,
    ) -> None:
        if not save_dict:
            raise ValueError("save_dict must name at least one object to save.")
        self.path = Path(save_dir) / filename
        self.save_dict = dict(save_dict)
        self.interval = interval
        self.save_key_metric = save_key_metric
        self.engine_key = engine_key
        self.logger = logging.getLogger("AtomicCheckpointSaver")

    def attach(self, engine: Engine) -> None:
        if self.engine_key:
            self.save_dict[self.engine_key] = engine
        if self.save_key_metric:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._on_new_best)
        else:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)
            engine.add_event_handler(Events.COMPLETED, self)

    def _on_new_best(self, engine: Engine) -> None:
        if engine.state.best_metric_epoch == engine.state.epoch:
            self(engine)

    def __call__(self, engine: Engine | None = None) -> None:
        states = {k: v.state_dict() for k, v in self.save_dict.items()}  # type: ignore[attr-defined]
        atomic_torch_save(next(iter(states.values())) if len(states) == 1 else states, self.path)
        self.logger.info(f"saved checkpoint {self.path}")
