"""Checkpoints written atomically, restorable for resuming, in the format MONAI's ``CheckpointLoader`` reads."""

from __future__ import annotations

import io
import logging
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from monai_genseg.atomic import atomic_write, md5sum


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`~monai_genseg.atomic.atomic_write`: the old file or the new one, never a
    partial one."""
    buffer = io.BytesIO()  # torch's own writer reports a full disk as "enforce fail ... unexpected pos"
    torch.save(obj, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


class RandomStates:
    """The random generators a run depends on, as a ``state_dict`` that loads with ``weights_only=True``.

    Covers torch (CPU and CUDA), NumPy's and Python's global generators, and the ``R`` of any MONAI
    ``Randomizable`` given (e.g. the mask augmentation), so a resumed run draws what the uninterrupted
    run would have drawn.
    """

    def __init__(self, randomizables: Sequence = ()) -> None:
        self.randomizables = list(randomizables)

    def state_dict(self) -> dict:
        state = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(np.random.get_state()),
            "python": _python_state(random.getstate()),
            "randomizables": [_numpy_state(r.R.get_state()) for r in self.randomizables],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        torch.set_rng_state(state["torch"])
        np.random.set_state(_numpy_tuple(state["numpy"]))
        random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
        for r, s in zip(self.randomizables, state["randomizables"]):
            r.R.set_state(_numpy_tuple(s))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointMismatch(ValueError):
    """A file beside a checkpoint is not the one the checkpoint recorded."""


class BestMetricState:
    """An evaluator's best key metric as a ``state_dict``, so that a resumed run keeps comparing against
    the best so far: without it the first validation after a resume would replace ``model.pt`` with a
    worse model.

    With ``model_path`` (the best model's file, ``model.pt``) it also records that file's md5, and a
    resume refuses a file that changed since: a run stopped between writing ``model.pt`` and its
    checkpoint (a full disk, say) would otherwise keep a best model the checkpoint knows nothing of.
    """

    def __init__(self, engine: Engine, model_path: str | os.PathLike | None = None) -> None:
        self.engine = engine
        self.model_path = None if model_path is None else Path(model_path)

    def state_dict(self) -> dict:
        state = {
            "best_metric": float(self.engine.state.best_metric),
            "best_metric_epoch": int(self.engine.state.best_metric_epoch),
        }
        if self.model_path is not None:
            state["model_md5"] = self._md5()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        if self.model_path is not None and "model_md5" in state and state["model_md5"] != self._md5():
            raise CheckpointMismatch(
                f"{self.model_path} changed after this checkpoint was saved (the run stopped between the two saves, "
                "e.g. on a full disk)"
            )
        self.engine.state.best_metric = state["best_metric"]
        self.engine.state.best_metric_epoch = state["best_metric_epoch"]

    def _md5(self) -> str:
        return md5sum(self.model_path) if self.model_path is not None and self.model_path.exists() else ""


def _numpy_state(state: tuple) -> dict:
    return {
        "keys": torch.from_numpy(state[1].astype(np.int64)),
        "pos": int(state[2]),
        "has_gauss": int(state[3]),
        "gauss": float(state[4]),
    }


def _numpy_tuple(state: Mapping) -> tuple:
    return ("MT19937", state["keys"].numpy().astype(np.uint32), state["pos"], state["has_gauss"], state["gauss"])


def _python_state(state: tuple) -> list:
    return [state[0], list(state[1]), state[2]]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


class AtomicCheckpointSaver:
    """Save ``{name: obj.state_dict()}`` of ``save_dict`` atomically to ``save_dir/filename``, and resume from it.

    A single entry is saved unwrapped (its bare ``state_dict``), as ignite and the model zoo do for
    ``models/model.pt``. Either saves every ``interval`` epochs and at completion (training), or,
    with ``save_key_metric=True``, whenever the engine's key metric reaches a new best (validation).
    An existing file from an earlier run is never replaced silently: attaching fails unless
    ``resume`` (load it and continue) or ``overwrite`` is set. Under ``torch.distributed`` only rank 0
    writes; attached on every rank, it resumes every replica from the same file.

    Args:
        save_dir: folder of the checkpoint.
        save_dict: objects with ``state_dict()``: networks, optimizers, :class:`RandomStates`.
        filename: file name inside ``save_dir``.
        interval: epochs between saves (ignored with ``save_key_metric``).
        save_key_metric: save on a new best key metric instead of on an interval.
        engine_key: also save the state of the engine this handler is attached to (iteration, epoch)
            under this name, e.g. ``"trainer"``, so a run can resume. A config cannot list the trainer
            in ``save_dict`` of one of its own handlers without a circular reference.
        resume: when the file exists, load every object (and the engine) from it when the run starts.
        overwrite: allow replacing a file left by an earlier run.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        save_dict: Mapping[str, object],
        filename: str = "checkpoint.pt",
        interval: int = 1,
        save_key_metric: bool = False,
        engine_key: str | None = None,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        if not save_dict:
            raise ValueError("save_dict must name at least one object to save.")
        self.path = Path(save_dir) / filename
        self.save_dict = dict(save_dict)
        self.interval = interval
        self.save_key_metric = save_key_metric
        self.engine_key = engine_key
        self.resume = resume
        self.overwrite = overwrite
        self._finished = False  # resumed from a run that had taken all its iterations
        self._saved_at: tuple | None = None  # the engine state last saved: its completion repeats the last epoch's
        self.logger = logging.getLogger("AtomicCheckpointSaver")

    def attach(self, engine: Engine) -> None:
        if self.path.exists() and not (self.resume or self.overwrite):
            raise FileExistsError(
                f"{self.path} exists from an earlier run and would be overwritten: pass --resume true to "
                "continue that run, --overwrite true to start over, or another --bundle_root."
            )
        if self.engine_key:
            self.save_dict[self.engine_key] = engine
        if self.resume and not self.save_key_metric:
            engine.add_event_handler(Events.STARTED, self.load)
        if self.save_key_metric:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._on_new_best)
        else:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)
            engine.add_event_handler(Events.COMPLETED, self)

    def load(self, engine: Engine) -> None:
        """Restore every object from the checkpoint, if there is one; the run continues where it stopped.

        A checkpoint that cannot be read, that holds other networks, or whose best model changed is refused
        with one line naming it; one whose run had finished says so, and the run ends with nothing to do.
        """
        if not self.path.exists():
            self.logger.info(f"no checkpoint at {self.path}; starting from scratch.")
            return
        try:
            checkpoint = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(
                f"{self.path}: cannot resume from it, the file is unreadable (truncated or not a "
                f"checkpoint: {_first_line(e)}); pass --overwrite true to start over."
            ) from e
        max_epochs = engine.state.max_epochs
        try:
            Checkpoint.load_objects(to_load=self.save_dict, checkpoint=checkpoint)
        except CheckpointMismatch as e:
            raise ValueError(f"{self.path}: cannot resume from it, {e}; pass --overwrite true to start over.") from e
        except (KeyError, RuntimeError, ValueError) as e:
            raise ValueError(
                f"{self.path}: cannot resume from it, it was saved by another bundle or preset "
                f"({_first_line(e)}); pass the --scale it was trained with, or --overwrite true."
            ) from e
        if engine.state.epoch > max_epochs:
            raise ValueError(f"{self.path} is at epoch {engine.state.epoch}, beyond max_epochs {max_epochs}.")
        engine.state.max_epochs = max_epochs
        if engine.state.iteration >= max_epochs * engine.state.epoch_length:
            self._finished = True
            self.logger.info(
                f"{self.path}: that run finished all {engine.state.iteration} iterations; nothing to "
                "resume (pass --overwrite true to train again)."
            )
            return
        self.logger.info(f"resumed from {self.path} at epoch {engine.state.epoch}, iteration {engine.state.iteration}")

    def _on_new_best(self, engine: Engine) -> None:
        if engine.state.best_metric_epoch == engine.state.epoch:
            self(engine)

    def __call__(self, engine: Engine | None = None) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() > 0:
            return  # the replicas are identical: rank 0 writes, every rank loads when resuming
        if self._finished:
            return  # a resumed run that had nothing left to do rewrites nothing
        if engine is not None:
            at = (id(engine), engine.state.epoch, engine.state.iteration)
            if at == self._saved_at:
                return  # COMPLETED right after the last EPOCH_COMPLETED: the same state, written once
            self._saved_at = at
        states = {k: v.state_dict() for k, v in self.save_dict.items()}  # type: ignore[attr-defined]
        atomic_torch_save(next(iter(states.values())) if len(states) == 1 else states, self.path)
        self.logger.info(f"saved checkpoint {self.path}")
