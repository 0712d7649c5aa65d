"""A planned run keeps its time budget on a machine slower or faster than planned, and its LR still ends at 0."""

from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Engine
from monai.handlers import LrScheduleHandler
from monai.optimizers import WarmupCosineSchedule

from monai_genseg.handlers import TimeBudget

EPOCH_LENGTH, PLANNED = 10, 20


class Clock:
    """A stand-in for time.monotonic that each training step advances by the step's seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(monkeypatch, budget, seconds_per_step):
    """Train PLANNED epochs of EPOCH_LENGTH steps; ``seconds_per_step(epoch)`` is the simulated step time."""
    clock = Clock()
    monkeypatch.setattr("monai_genseg.handlers.time_budget.time.monotonic", clock)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = WarmupCosineSchedule(optimizer, warmup_steps=10, t_total=EPOCH_LENGTH * PLANNED)
    lrs = []

    def step(engine, batch):
        clock.now += seconds_per_step(engine.state.epoch)
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()

    trainer = Engine(step)
    LrScheduleHandler(scheduler, epoch_level=False, print_lr=False).attach(trainer)
    TimeBudget(budget, scheduler).attach(trainer)
    trainer.run(range(EPOCH_LENGTH), max_epochs=PLANNED)
    return trainer, scheduler, lrs, clock.now


def test_a_slower_machine_trains_fewer_epochs_within_the_budget_and_the_lr_still_decays_to_zero(monkeypatch, caplog):
    # planned: 20 epochs in 60 s; this machine takes 5 s an epoch, so 12 fit
    with caplog.at_level(logging.WARNING):
        trainer, scheduler, lrs, elapsed = run(monkeypatch, budget=60.0, seconds_per_step=lambda epoch: 0.5)
    assert trainer.state.epoch == trainer.state.max_epochs == 12
    assert elapsed <= 60.0 and scheduler.t_total == trainer.state.epoch * EPOCH_LENGTH
    assert lrs[-1] < 0.01 * max(lrs)  # the cosine reached its end with the last step, not 2/3 of the way
    assert caplog.text.count("epochs take") == 1 and "epochs take 5.0 s here" in caplog.text


def test_a_run_that_fits_is_left_as_planned(monkeypatch, caplog):
    with caplog.at_level(logging.WARNING):
        trainer, scheduler, _, _ = run(monkeypatch, budget=20.5, seconds_per_step=lambda epoch: 0.1)
    assert trainer.state.epoch == PLANNED and scheduler.t_total == EPOCH_LENGTH * PLANNED
    assert "epochs take" not in caplog.text


def test_a_faster_machine_uses_the_budget_up_to_twice_the_plan_and_the_lr_still_decays_to_zero(monkeypatch):
    # planned: 20 epochs; 1 s an epoch here, so 30 fit in 30 s
    trainer, scheduler, lrs, elapsed = run(monkeypatch, budget=30.5, seconds_per_step=lambda epoch: 0.1)
    assert trainer.state.epoch == trainer.state.max_epochs == 30 and elapsed <= 30.5
    assert scheduler.t_total == 30 * EPOCH_LENGTH and lrs[-1] < 0.01 * max(lrs)
    trainer, _, _, _ = run(monkeypatch, budget=300.0, seconds_per_step=lambda epoch: 0.1)
    assert trainer.state.epoch == 2 * PLANNED  # no more than twice the plan, however much time is left


def test_a_slow_first_epoch_does_not_cut_the_run_for_good(monkeypatch):
    """The first epoch pays for starting the loaders (and cuDNN's tuning); later epochs win the plan back."""
    trainer, scheduler, _, elapsed = run(
        monkeypatch, budget=34.5, seconds_per_step=lambda epoch: 1.5 if epoch == 1 else 0.1
    )
    assert trainer.state.epoch == PLANNED and elapsed <= 34.5 and scheduler.t_total == EPOCH_LENGTH * PLANNED


@pytest.mark.parametrize("budget", [None, 0])
def test_no_budget_means_no_handler(monkeypatch, budget):
    trainer, scheduler, _, _ = run(monkeypatch, budget=budget, seconds_per_step=lambda epoch: 100.0)
    assert trainer.state.epoch == PLANNED and scheduler.t_total == EPOCH_LENGTH * PLANNED
