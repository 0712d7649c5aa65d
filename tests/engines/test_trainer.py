"""What each GenSeg mode changes, and that Stage II's loss is connected to the generator."""

import pytest
import torch
from ignite.engine import Events
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
    for mode in ("baseline", "separate", "joint", "end2end"):
        trainer = trainer_factory(mode, iterations=3, warmup=2)
        trainer.run()
        steps[mode] = [s["step"].item() for s in trainer.optimizer.state.values()][0]
    assert steps == {"baseline": 3, "separate": 3, "joint": 3, "end2end": 3}


def test_training_loss_reaches_generator_weights_and_alpha(trainer_factory):
    trainer = trainer_factory("end2end")
    batch = next(iter(trainer.data_loader))
    masks, synthetic = trainer.synthesize(batch["label"], keep_graph=True)
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


def test_feedback_optimizer_steps_generator_weights_and_logs_its_share(trainer_factory):
    trainer = trainer_factory("end2end")
    trainer.feedback_optimizer = feedback = torch.optim.Adam(trainer.generator.weight_parameters(), 2e-5)
    batch = next(iter(trainer.data_loader))
    # the pix2pix update the share is measured against
    trainer.pix2pix_step(batch["image"], batch["label"], measure_update=True)
    masks, synthetic = trainer.synthesize(batch["label"], keep_graph=True)
    grads, _ = trainer.segmenter_gradients(batch["image"], batch["label"], masks, synthetic, for_architecture=True)
    _, weights0 = _snapshot(trainer)
    out = trainer.architecture_step(masks, synthetic, grads)
    assert _changed(weights0, _snapshot(trainer)[1])
    assert feedback.state and not any(
        p in trainer.generator_optimizer.state
        and p in feedback.state
        and trainer.generator_optimizer.state[p]["exp_avg"] is feedback.state[p]["exp_avg"]
        for p in trainer.generator.weight_parameters()
    )
    assert 0 < out["feedback_share"] < 1 and out["hypergradient_norm"] > 0


def test_joint_trains_the_generator_but_never_alpha(trainer_factory):
    trainer = trainer_factory("joint", iterations=3, warmup=2)
    arch0, weights0 = _snapshot(trainer)
    trainer.run()
    arch1, weights1 = _snapshot(trainer)
    assert not _changed(arch0, arch1) and _changed(weights0, weights1)
    assert "loss_generator" in trainer.state.output[0] and "loss_val" not in trainer.state.output[0]


def _real_stream(trainer_factory, mode):
    """The real image batches Stage II reads, from a shuffled loader with random transforms in the main process."""
    from monai.data import Dataset
    from monai.transforms import Compose, RandFlipd, RandGaussianNoised
    from torch.utils.data import DataLoader

    from tests.conftest import blob_pairs

    randomize = Compose(
        [RandFlipd(["image", "label"], prob=0.5, spatial_axis=0), RandGaussianNoised("image", prob=1.0)]
    )
    randomize.set_random_state(0)
    loader = DataLoader(Dataset(blob_pairs(6), randomize), batch_size=2, shuffle=True, num_workers=0)
    torch.manual_seed(0)
    trainer = trainer_factory(mode, iterations=6, warmup=3, train=loader)
    seen = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: seen.append(torch.stack([b["image"] for b in e.state.batch]))
    )
    trainer.run()
    return seen


def test_every_mode_reads_the_same_real_batches(trainer_factory):
    """The warm-up (3 batches here) must not shift the real stream: mode differences are the method's alone."""
    baseline = _real_stream(trainer_factory, "baseline")
    for mode in ("joint", "end2end"):
        other = _real_stream(trainer_factory, mode)
        assert len(other) == len(baseline) == 6
        assert all(torch.equal(a, b) for a, b in zip(baseline, other)), mode


def _alpha_after(trainer_factory, hypergradient_value, steps=30):
    """Run Stage III's optimizer (Adam, no weight decay, as in the bundles) on a given hypergradient."""
    trainer = trainer_factory("end2end")
    arch = trainer.generator.arch_parameters()
    trainer.arch_optimizer = torch.optim.Adam(arch, 3e-3, betas=(0.5, 0.999))
    trainer.architecture_hypergradient = lambda *a: ([hypergradient_value(x) for x in arch], torch.tensor(0.0))
    for _ in range(steps):
        trainer.architecture_step(None, None, [])
    return [torch.softmax(a.detach(), 0) for a in trainer.generator.arch_parameters()]


def test_alpha_moves_with_a_consistent_tiny_hypergradient_and_stays_put_without_one(trainer_factory):
    # 1e-6 per logit, the order measured on real data; the same sign every step
    consistent = _alpha_after(trainer_factory, lambda a: 1e-6 * torch.linspace(-1, 1, a.numel()))
    assert all(w[0] > 0.36 and w[-1] < 0.31 for w in consistent)  # uniform is 1/3
    still = _alpha_after(trainer_factory, lambda a: torch.zeros_like(a))
    assert all(torch.allclose(w, torch.full_like(w, 1 / w.numel())) for w in still)


def test_configuration_errors_are_explained(trainer_factory):
    with pytest.raises(ValueError, match="mode must be one of"):
        trainer_factory("gan")
    with pytest.raises(ValueError, match="hypergradient must be one of"):
        trainer_factory(hypergradient="second_order")
    with pytest.raises(ValueError, match="unroll must be one of"):
        trainer_factory(unroll="rmsprop")
    with pytest.raises(ValueError, match="unroll='sgd'"):
        trainer_factory(optimizer_class=torch.optim.SGD)


def test_generator_warmup_stops_when_validation_l1_stalls(trainer_factory):
    trainer = trainer_factory("separate", warmup=200, warmup_patience=1)
    trainer.pix2pix_step = lambda image, label: {"loss_generator_l1": 0.0}  # nothing improves
    # first check sets the best, the second finds no gain
    assert trainer.warmup_generator(200, check_interval=2, patience=1) == 4


def test_one_hot_mask_matches_labels():
    label = torch.tensor([[[0, 2], [1, 0]]]).unsqueeze(0)
    oh = one_hot_mask(label, 3)
    assert oh.shape == (1, 3, 2, 2) and torch.equal(oh.argmax(1), label[:, 0])


def test_the_feedback_loop_runs_on_the_bundles_segmenter_and_leaves_its_weights_in_place(trainer_factory):
    """The bundles' segmenter (DynUNet, deep supervision) through Stage III's functional_call every step."""
    from monai.losses import DiceCELoss

    from monai_genseg.losses import DeepSupervisedLoss
    from monai_genseg.networks import segmenter

    seg = segmenter(2, 1, 2, (4, 8, 16))
    before = [p.detach().clone() for p in seg.parameters()]
    loss = DeepSupervisedLoss(DiceCELoss(to_onehot_y=True, softmax=True))
    trainer = trainer_factory(
        segmenter=seg, loss_function=loss, hypergradient="exact", arch_update_interval=1, iterations=3
    )
    trainer.run()
    assert all(isinstance(p, torch.nn.Parameter) for _, p in seg.named_parameters(remove_duplicate=False))
    assert all(not torch.equal(a, b) for a, b in zip(before, seg.parameters()) if b.requires_grad)
    assert trainer.state.output[0]["pred"].shape == (2, 32, 32)  # the full-resolution logits, not the stack


def test_a_segmenter_with_a_module_registered_twice_is_refused_for_the_feedback(trainer_factory):
    class Aliased(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
            self.same = self.conv  # what MONAI's DynUNet does with its blocks

        def forward(self, x):
            return self.same(x)

    with pytest.raises(ValueError, match="registers some modules twice"):
        trainer_factory(segmenter=Aliased())
    trainer_factory("joint", segmenter=Aliased())  # no hypergradient: no functional_call, no refusal


@pytest.mark.parametrize("amp, cpu_bf16", [(True, False), (True, True), (False, True)])
def test_cpu_bf16_trains_the_segmenter_under_bfloat16_autocast_and_keeps_float32_weights(
    trainer_factory, amp, cpu_bf16
):
    """What a CPU plan with ``cpu_bf16`` relies on: every stage's forward in bfloat16 (the bundles' exact
    hypergradient included), weights and steps in float32; ``--amp false`` keeps everything in float32."""
    trainer = trainer_factory("end2end", amp=amp, cpu_bf16=cpu_bf16, iterations=2, hypergradient="exact")
    seen = []
    for net in (trainer.network, trainer.generator):
        net.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    segmenter = [p.detach().clone() for p in trainer.network.parameters()]
    alpha, weights = _snapshot(trainer)
    trainer.run()
    assert set(seen) == {torch.bfloat16 if amp and cpu_bf16 else torch.float32}
    assert all(p.dtype == torch.float32 for p in trainer.network.parameters())
    new_alpha, new_weights = _snapshot(trainer)
    assert _changed(segmenter, trainer.network.parameters()) and _changed(weights, new_weights)
    assert _changed(alpha, new_alpha) and trainer.state.nonfinite_skips == {}
