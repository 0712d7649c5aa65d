"""What each GenSeg mode changes, and that Stage II's loss is connected to the generator."""

import pytest
import torch
from monai.handlers import from_engine

from monai_genseg.networks import one_hot_mask


def _snapshot(trainer):
    gen = trainer.generator
    return [a.detach().clone() for a in gen.arch_parameters()], [w.detach().clone() for w in gen.weight_parameters()]


def _changed(before, after):
    return any(not torch.equal(b, a) for b, a in zip(before, after))


def test_end2end_moves_alpha_and_reports_every_stage(trainer_factory):
    trainer = trainer_factory("end2end", iterations=4, warmup=2)
    arch0, weights0 = _snapshot(trainer)
    trainer.run()
    arch1, weights1 = _snapshot(trainer)
    assert _changed(arch0, arch1) and _changed(weights0, weights1)
    # decollated as SupervisedTrainer does: one dict per item, the losses replicated, so MONAI's
    # usual output transform (StatsHandler, MLFlowHandler, --tracking) reads the loss
    items = trainer.state.output
    assert isinstance(items, list) and len(items) == 2  # the fixture's batch size
    for key in ("loss", "loss_real", "loss_synthetic", "loss_generator", "loss_discriminator", "loss_val"):
        assert all(item[key] == items[0][key] for item in items), key
    assert from_engine(["loss"], first=True)(items) == items[0]["loss"] and isinstance(items[0]["loss"], float)
    assert items[0]["synthetic_image"].shape == items[0]["image"].shape  # (C, *spatial), no batch axis
    assert trainer.state.generator_warmup_steps == 2


@pytest.mark.parametrize("mode", ["baseline", "separate"])
def test_baseline_and_separate_leave_alpha_alone(trainer_factory, mode):
    trainer = trainer_factory(mode, iterations=3, warmup=2)
    arch0, weights0 = _snapshot(trainer)
    trainer.run()
    arch1, weights1 = _snapshot(trainer)
    assert not _changed(arch0, arch1)
    # separate trains the generator during warm-up only; baseline never touches it
    assert _changed(weights0, weights1) == (mode == "separate")
    assert ("synthetic_image" in trainer.state.output[0]) == (mode == "separate")


def test_every_mode_takes_the_same_segmenter_steps(trainer_factory):
    steps = {}
    for mode in ("baseline", "separate", "end2end"):
        trainer = trainer_factory(mode, iterations=3, warmup=2)
        trainer.run()
        steps[mode] = [s["step"].item() for s in trainer.optimizer.state.values()][0]
    assert steps == {"baseline": 3, "separate": 3, "end2end": 3}


def test_training_loss_reaches_generator_weights_and_alpha(trainer_factory):
    trainer = trainer_factory("end2end")
    batch = next(iter(trainer.data_loader))
    masks, synthetic = trainer.synthesize(batch["label"])
    loss = trainer.loss_function(trainer.network(synthetic), masks)
    gen = trainer.generator
    grads = torch.autograd.grad(loss, gen.arch_parameters() + gen.weight_parameters(), allow_unused=True)
    arch_grads, weight_grads = grads[: len(gen.arch_parameters())], grads[len(gen.arch_parameters()) :]
    assert all(g is not None and g.abs().sum() > 0 for g in arch_grads)
    assert sum(g.abs().sum() for g in weight_grads if g is not None) > 0


def test_separate_mode_synthesizes_without_a_graph(trainer_factory):
    trainer = trainer_factory("separate")
    _, synthetic = trainer.synthesize(next(iter(trainer.data_loader))["label"])
    assert not synthetic.requires_grad


def test_lambda_syn_ramps_up(trainer_factory):
    trainer = trainer_factory("end2end", syn_rampup_iterations=4, lambda_syn=2.0)
    trainer.state.iteration = 1
    assert trainer.current_lambda_syn() == pytest.approx(0.5)
    trainer.state.iteration = 10
    assert trainer.current_lambda_syn() == pytest.approx(2.0)


def test_hypergradient_to_generator_updates_weights_through_the_arch_step(trainer_factory):
    trainer = trainer_factory("end2end", hypergradient_to_generator=True)
    batch = next(iter(trainer.data_loader))
    masks, synthetic = trainer.synthesize(batch["label"])
    grads, _ = trainer.segmenter_step(batch["image"], batch["label"], masks, synthetic, for_architecture=True)
    _, weights0 = _snapshot(trainer)
    trainer.architecture_step(masks, synthetic, grads)
    assert _changed(weights0, _snapshot(trainer)[1])


def test_configuration_errors_are_explained(trainer_factory):
    with pytest.raises(ValueError, match="mode must be one of"):
        trainer_factory("joint")
    with pytest.raises(ValueError, match="hypergradient must be one of"):
        trainer_factory(hypergradient="second_order")


def test_generator_warmup_stops_when_validation_l1_stalls(trainer_factory):
    trainer = trainer_factory("separate", warmup=200, warmup_patience=1)
    trainer.generator_step = lambda image, label: {"loss_generator_l1": 0.0}  # nothing improves
    trainer.warmup_check_interval = 2
    assert trainer.warmup_generator() == 4  # first check sets the best, the second finds no gain


def test_one_hot_mask_matches_labels():
    label = torch.tensor([[[0, 2], [1, 0]]]).unsqueeze(0)
    oh = one_hot_mask(label, 3)
    assert oh.shape == (1, 3, 2, 2) and torch.equal(oh.argmax(1), label[:, 0])
