"""The trainer's stage events, its injectable adversarial losses, the warm-up handler and its settings."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from monai.engines.utils import IterationEvents

from monai_genseg.engines import (
    FeedbackSettings,
    GenerationSettings,
    GenSegEvents,
    bce_discriminator_loss,
    bce_generator_loss,
)
from monai_genseg.handlers import GeneratorWarmup

STAGES = (GenSegEvents.GENERATOR_COMPLETED, GenSegEvents.SEGMENTER_COMPLETED, GenSegEvents.ARCHITECTURE_COMPLETED)


def _record(trainer):
    """The stage events (and MONAI's MODEL_COMPLETED) in the order they fire, with what state.output held."""
    fired = []
    for event in (*GenSegEvents, IterationEvents.MODEL_COMPLETED):
        trainer.add_event_handler(event, lambda e, ev=event: fired.append((ev, e.state.iteration, e.state.output)))
    return fired


def _count(fired, event):
    return sum(ev == event for ev, _, _ in fired)


def test_end2end_fires_each_stage_event_when_the_stage_runs(trainer_factory):
    trainer = trainer_factory("end2end", iterations=4, warmup=2, generator_update_interval=1, arch_update_interval=2)
    fired = _record(trainer)
    trainer.run()
    assert _count(fired, GenSegEvents.WARMUP_COMPLETED) == 1 and fired[0][:2] == (GenSegEvents.WARMUP_COMPLETED, 0)
    assert _count(fired, GenSegEvents.GENERATOR_COMPLETED) == 4
    assert _count(fired, GenSegEvents.SEGMENTER_COMPLETED) == 4
    assert _count(fired, GenSegEvents.ARCHITECTURE_COMPLETED) == 2  # iterations 2 and 4
    assert [it for ev, it, _ in fired if ev == GenSegEvents.ARCHITECTURE_COMPLETED] == [2, 4]
    # within an iteration: Stage I, Stage II, Stage III, then MONAI's decollation
    second = [ev for ev, it, _ in fired if it == 2]
    assert second == [*STAGES, IterationEvents.MODEL_COMPLETED]
    # a stage's event sees the iteration's output so far, its own losses included
    outputs = {ev: out for ev, it, out in fired if it == 2}
    assert "loss_generator" in outputs[GenSegEvents.GENERATOR_COMPLETED]
    assert "loss_real" in outputs[GenSegEvents.SEGMENTER_COMPLETED]
    assert "loss_val" in outputs[GenSegEvents.ARCHITECTURE_COMPLETED]
    assert isinstance(trainer.state.output, list)  # still decollated at the end


def test_stage_three_waits_for_synthetic_pairs_to_weigh_in(trainer_factory):
    trainer = trainer_factory("end2end", iterations=2, lambda_syn=0.0)
    fired = _record(trainer)
    trainer.run()
    assert _count(fired, GenSegEvents.GENERATOR_COMPLETED) == 2
    assert _count(fired, GenSegEvents.ARCHITECTURE_COMPLETED) == 0


def test_baseline_fires_only_the_segmenter_event(trainer_factory):
    trainer = trainer_factory("baseline", iterations=4, warmup=2)
    fired = _record(trainer)
    trainer.run()
    assert _count(fired, GenSegEvents.SEGMENTER_COMPLETED) == 4
    for event in (GenSegEvents.WARMUP_COMPLETED, GenSegEvents.GENERATOR_COMPLETED, GenSegEvents.ARCHITECTURE_COMPLETED):
        assert _count(fired, event) == 0, event


def test_train_handlers_can_hook_into_a_stage_and_event_names_are_merged(trainer_factory):
    seen = []

    class OnSegmenter:
        def attach(self, engine):
            engine.add_event_handler(GenSegEvents.SEGMENTER_COMPLETED, lambda e: seen.append(e.state.iteration))
            engine.add_event_handler("custom_event", lambda e: seen.append("custom"))

    names = ["custom_event"]
    trainer = trainer_factory("joint", iterations=2, train_handlers=[OnSegmenter()], event_names=names)
    trainer.run()
    trainer.fire_event("custom_event")
    assert seen == [1, 2, "custom"] and names == ["custom_event"]


def _least_squares_d(calls):
    def loss(real_logits, fake_logits):
        value = 0.5 * (((real_logits - 1) ** 2).mean() + (fake_logits**2).mean())
        calls.append(value.detach())
        return value

    return loss


def _least_squares_g(calls):
    def loss(fake_logits):
        value = 0.5 * ((fake_logits - 1) ** 2).mean()
        calls.append(value.detach())
        return value

    return loss


def test_a_custom_adversarial_loss_is_used(trainer_factory):
    d_calls, g_calls = [], []
    least_squares = dict(d_loss_function=_least_squares_d(d_calls), g_loss_function=_least_squares_g(g_calls))
    trainer = trainer_factory("joint", **least_squares)
    batch = next(iter(trainer.data_loader))
    out = trainer.pix2pix_step(batch["image"], batch["label"])
    assert len(d_calls) == 1 and len(g_calls) == 1
    assert out["loss_discriminator"] == d_calls[0].item()
    assert out["loss_generator"] == pytest.approx(g_calls[0].item() + 100.0 * out["loss_generator_l1"])


def test_default_adversarial_losses_are_pix2pix_bce(trainer_factory):
    real, fake = torch.randn(2, 1, 5, 5), torch.randn(2, 1, 5, 5)
    ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
    d = 0.5 * (F.binary_cross_entropy_with_logits(real, ones) + F.binary_cross_entropy_with_logits(fake, zeros))
    assert torch.equal(bce_discriminator_loss(real, fake), d)
    assert torch.equal(bce_generator_loss(fake), F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)))
    losses = []
    for explicit in (False, True):
        kwargs = dict(d_loss_function=bce_discriminator_loss, g_loss_function=bce_generator_loss) if explicit else {}
        trainer = trainer_factory("joint", **kwargs)
        batch = next(iter(trainer.data_loader))
        losses.append(trainer.pix2pix_step(batch["image"], batch["label"]))
    assert losses[0] == losses[1]


def test_warmup_handler_runs_on_a_fresh_start_only(trainer_factory):
    trainer = trainer_factory("separate", iterations=2)
    warmup = GeneratorWarmup(3, check_interval=2)
    weights = [w.detach().clone() for w in trainer.generator.weight_parameters()]
    trainer.state.iteration = 5  # as a resume leaves it
    warmup(trainer)
    assert not hasattr(trainer.state, "generator_warmup_steps")
    assert all(torch.equal(a, b) for a, b in zip(weights, trainer.generator.weight_parameters()))
    trainer.state.iteration = 0
    warmup(trainer)
    assert trainer.state.generator_warmup_steps == 3


def test_warmup_runs_only_as_a_handler(trainer_factory):
    trainer = trainer_factory("separate", iterations=1)  # no GeneratorWarmup attached
    fired = _record(trainer)
    trainer.run()
    assert _count(fired, GenSegEvents.WARMUP_COMPLETED) == 0 and not hasattr(trainer.state, "generator_warmup_steps")
    attached = trainer_factory("separate", iterations=1)
    GeneratorWarmup(2, check_interval=2).attach(attached)
    attached.run()
    assert attached.state.generator_warmup_steps == 2


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: FeedbackSettings(unroll="x"), "unroll"),
        (lambda: FeedbackSettings(hypergradient="x"), "hypergradient"),
        (lambda: FeedbackSettings(arch_update_interval=0), "arch_update_interval"),
        (lambda: GenerationSettings(generator_update_interval=0), "generator_update_interval"),
    ],
)
def test_invalid_settings_name_their_field_in_one_line(make, field):
    with pytest.raises(ValueError) as error:
        make()
    message = str(error.value)
    assert message.startswith(f"{field} must be") and "\n" not in message


def test_settings_are_frozen_and_must_be_settings(trainer_factory):
    with pytest.raises(dataclasses.FrozenInstanceError):
        FeedbackSettings().unroll = "sgd"
    trainer = trainer_factory("joint")
    assert trainer.generation == GenerationSettings() and trainer.feedback.hypergradient == "finite_difference"
    with pytest.raises(TypeError, match="generation must be a GenerationSettings"):
        trainer_factory("joint", generation={"lambda_syn": 2.0})
