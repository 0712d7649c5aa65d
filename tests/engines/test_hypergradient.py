"""The architecture hypergradient equals the derivative of L_val(theta'(alpha)) it claims to be."""

import copy
from dataclasses import replace

import pytest
import torch
from torch.func import functional_call

from monai_genseg.networks import one_hot_mask

ADAM_KEYS = ("lr", "betas", "eps", "weight_decay")


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _problem(trainer_factory, method, unroll="sgd"):
    kwargs = {"unrolled_lr": 0.5} if unroll == "sgd" else {}
    trainer = trainer_factory(hypergradient=method, act="swish", unroll=unroll, **kwargs)
    trainer.network.double(), trainer.generator.double()
    batch = next(iter(trainer.data_loader))
    image, label = batch["image"].double(), batch["label"].double()
    if unroll == "optimizer":  # two real Adam steps, so the unroll starts from non-trivial moments
        for _ in range(2):
            trainer.optimizer.zero_grad()
            trainer.loss_function(trainer.network(image), label).backward()
            trainer.optimizer.step()
    masks, _ = trainer.synthesize(label)  # one fixed set of augmented masks for every evaluation
    # give the logits distinct values so the softmax weights are not all equal
    with torch.no_grad():
        for i, a in enumerate(trainer.generator.arch_parameters()):
            a.copy_(torch.linspace(-0.5, 0.5, a.numel()) * (i + 1))
    return trainer, image, label, masks


def _next_weights(trainer, grads):
    """The segmenter weights after the step the trainer unrolls, taken for real on a copy."""
    if trainer.feedback.unroll == "sgd":
        lr = trainer._unrolled_lr()
        return {n: p.detach() - lr * g for (n, p), g in zip(trainer.network.named_parameters(), grads)}
    net = copy.deepcopy(trainer.network)
    group = trainer.optimizer.param_groups[0]
    optimizer = torch.optim.Adam(net.parameters(), **{k: v for k, v in group.items() if k in ADAM_KEYS})
    # load_state_dict shares the moment tensors
    optimizer.load_state_dict(copy.deepcopy(trainer.optimizer.state_dict()))
    for p, g in zip(net.parameters(), grads):
        p.grad = g.detach().clone()
    optimizer.step()
    return {n: p.detach() for n, p in net.named_parameters()}


def _val_loss_after_unrolled_step(trainer, image, label, masks):
    """L_val(theta'), theta' the next segmenter weights, recomputed from scratch."""
    synthetic = trainer.generator(one_hot_mask(masks, 2))
    grads, _ = trainer.segmenter_gradients(image, label, masks, synthetic)
    theta = _next_weights(trainer, grads)
    val_image, val_label = next(iter(trainer.val_data_loader)).values()
    return trainer.loss_function(functional_call(trainer.network, theta, (val_image.double(),)), val_label.double())


def _numerical(trainer, image, label, masks, h=1e-5):
    result = []
    for alpha in trainer.generator.arch_parameters():
        g = torch.zeros_like(alpha)
        for i in range(alpha.numel()):
            with torch.no_grad():
                alpha[i] += h
            up = _val_loss_after_unrolled_step(trainer, image, label, masks).item()
            with torch.no_grad():
                alpha[i] -= 2 * h
            down = _val_loss_after_unrolled_step(trainer, image, label, masks).item()
            with torch.no_grad():
                alpha[i] += h
            g[i] = (up - down) / (2 * h)
        result.append(g)
    return torch.cat(result)


def _trainer_hypergradient(trainer, image, label, masks):
    synthetic = trainer.generator(one_hot_mask(masks, 2))
    grads, _ = trainer.segmenter_gradients(image, label, masks, synthetic, for_architecture=True)
    hyper, _ = trainer.architecture_hypergradient(masks, synthetic, grads)
    return torch.cat([h.flatten() for h in hyper])


@pytest.mark.parametrize("unroll", ["sgd", "optimizer"])
def test_exact_hypergradient_matches_numerical_derivative(trainer_factory, float64, unroll):
    """Against a numerical derivative of L_val after the step the optimizer really takes (Adam's, from its moments)."""
    trainer, image, label, masks = _problem(trainer_factory, "exact", unroll)
    numerical = _numerical(trainer, image, label, masks)
    exact = _trainer_hypergradient(trainer, image, label, masks)
    assert numerical.abs().max() > 1e-6, "the problem is degenerate: alpha does not influence L_val"
    rel = (exact - numerical).norm() / numerical.norm()
    assert rel < 1e-3, f"relative error {rel:.2e}"


@pytest.mark.parametrize("unroll", ["sgd", "optimizer"])
def test_finite_difference_hypergradient_points_like_exact(trainer_factory, float64, unroll):
    trainer, image, label, masks = _problem(trainer_factory, "exact", unroll)
    exact = _trainer_hypergradient(trainer, image, label, masks)
    trainer.feedback = replace(trainer.feedback, hypergradient="finite_difference")
    fd = _trainer_hypergradient(trainer, image, label, masks)
    cosine = torch.nn.functional.cosine_similarity(fd, exact, dim=0)
    assert cosine > 0.95, f"cosine {cosine:.4f}"
