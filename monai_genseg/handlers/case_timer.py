"""One log line per inferred case: which file, how long it took, how many are left."""

from __future__ import annotations

import logging
import os
import time

from ignite.engine import Engine, Events


class CaseTimer:
    """Log ``case k/N <file>: t s (about T s left)`` after each iteration of an evaluator running one case per
    batch, so a long inference (a 512x512x300 CT takes minutes on a CPU) shows it is moving."""

    def __init__(self, name: str = "inference") -> None:
        self.logger = logging.getLogger(name)
        self._start = 0.0
        self._spent = 0.0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._completed)

    def _reset(self, engine: Engine) -> None:
        self._spent = 0.0

    def _started(self, engine: Engine) -> None:
        self._start = time.perf_counter()

    def _completed(self, engine: Engine) -> None:
        took = time.perf_counter() - self._start
        self._spent += took
        done, total = engine.state.iteration, engine.state.epoch_length or 0
        left = f", about {self._spent / done * (total - done):.0f} s left" if total > done else ""
        self.logger.info(f"case {done}/{total} {_source(engine)}: {took:.1f} s{left}")


def _source(engine: Engine) -> str:
    """The input file of the current batch, from its image's metadata."""
    batch = engine.state.batch
    batch = batch[0] if isinstance(batch, (list, tuple)) and batch else batch  # decollated by MONAI's evaluator
    image = batch.get("image") if isinstance(batch, dict) else None
    names = getattr(image, "meta", {}).get("filename_or_obj", "?")
    name = names[0] if isinstance(names, (list, tuple)) else names
    return os.path.basename(str(name))
