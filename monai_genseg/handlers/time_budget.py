"""Keep a planned run inside ``--time_budget_minutes``, whatever the machine's real step time."""

from __future__ import annotations

import logging
import time

import ignite.distributed as idist
from ignite.engine import Engine, Events


class TimeBudget:
    """After each epoch, fit the epochs still to run into what is left of ``budget_seconds``, and end the LR
    schedule with the last of them.

    The plan sizes its steps from a measured bare network step times a pipeline factor (loading,
    augmentation, validation). That factor is a property of the machine: 2.2 on a 2-core CPU, 6.7 on an H200
    whose data loaders could not keep up. So the budget is kept by measuring the epochs themselves: the run
    trains fewer whole epochs (checkpoints and ``--resume`` count epochs) when they run slower than planned,
    and up to the planned number again when they speed up (the first epoch pays for starting the loaders).
    ``lr_scheduler.t_total`` follows, so the LR still decays to 0 at the last step and the final weights stay
    the converged ones. Time counts from this handler's creation, as the trainer is built; a resumed run
    gets the budget afresh. On several ranks, rank 0 decides for all of them.

    When the epochs run faster than planned, the run trains more of them, up to ``max_stretch`` times the
    planned number, so the budget is used rather than left idle (the LR schedule stretches with it).
    """

    def __init__(
        self,
        budget_seconds: float | None,
        lr_scheduler=None,
        max_stretch: float = 2.0,
        name: str = "monai_genseg.plan",
    ) -> None:
        self.budget, self.lr_scheduler, self.max_stretch = budget_seconds, lr_scheduler, max_stretch
        self.logger = logging.getLogger(name)
        self.origin = time.monotonic()
        self._planned = self._epoch0 = 0
        self._t1: float | None = None

    def attach(self, engine: Engine) -> None:
        if self.budget:
            engine.add_event_handler(Events.STARTED, self._started)
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._refit)

    def _started(self, engine: Engine) -> None:
        self._planned, self._epoch0, self._t1 = engine.state.max_epochs, engine.state.epoch, None
        self._t0 = time.monotonic()

    def _refit(self, engine: Engine) -> None:
        now, epoch = time.monotonic(), engine.state.epoch
        if self._t1 is None or epoch - self._epoch0 < 2:  # one epoch seen: it is all there is to go by
            per_epoch = now - self._t0
            self._t1 = now if epoch - self._epoch0 == 1 else self._t1
        else:  # later epochs without the first one's start-up
            per_epoch = (now - self._t1) / (epoch - self._epoch0 - 1)
        left = self.budget - (now - self.origin)
        most = max(self._planned, int(self._planned * self.max_stretch))
        fit = min(most, epoch + max(0, int(left / max(per_epoch, 1e-9) + 1e-6)))  # no rounding flips
        fit = int(idist.broadcast(fit, src=0))
        if fit == engine.state.max_epochs:
            return
        self.logger.warning(
            f"epochs take {per_epoch:.1f} s here, {left:.0f} s of the {self.budget / 60:g}-minute budget are left: "
            f"training {fit} epochs of {engine.state.epoch_length} steps (planned {self._planned})"
        )
        engine.state.max_epochs = fit
        if self.lr_scheduler is not None:
            self.lr_scheduler.t_total = fit * engine.state.epoch_length
