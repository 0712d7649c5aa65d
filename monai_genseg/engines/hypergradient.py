"""The architecture hypergradient of GenSeg's bilevel problem.

The segmenter weights theta are trained on L_tr(theta, alpha), whose synthetic term depends on the
generator's architecture logits alpha. alpha is chosen to minimise the validation loss after one
unrolled training step, L_val(theta'(alpha)) with theta' = theta - lr * grad_theta L_tr(theta, alpha).
Its gradient is  -lr * d/d alpha [grad_theta L_tr(theta, alpha) . v]  with v = grad L_val(theta').
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

ParamDict = Mapping[str, torch.Tensor]
HYPERGRADIENT_METHODS = ("finite_difference", "exact")


def unrolled_hypergradient(
    val_loss: Callable[[ParamDict], torch.Tensor],
    synthetic_loss: Callable[[ParamDict], torch.Tensor],
    params: ParamDict,
    train_grads: ParamDict,
    targets: Sequence[torch.Tensor],
    lr: float,
    method: str = "finite_difference",
    radius: float = 0.01,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gradient of ``L_val(params - lr * train_grads)`` with respect to ``targets`` (the logits alpha).

    Args:
        val_loss: segmenter loss on real validation data for a given set of segmenter weights.
        synthetic_loss: the alpha-dependent part of L_tr (weighted synthetic-pair loss) for given weights;
            its graph must reach ``targets``. The real-data term does not depend on alpha and is left out.
        params: current segmenter weights theta (detached).
        train_grads: grad_theta L_tr at ``params``. For ``"exact"`` it must carry its graph
            (``create_graph=True``); for ``"finite_difference"`` it may be detached.
        targets: tensors to differentiate with respect to: alpha, optionally also generator weights.
        lr: step size of the unrolled step.
        method: ``"exact"`` differentiates through the unrolled step with autograd (second order);
            ``"finite_difference"`` uses the DARTS central difference of grad_alpha L_tr around theta.
        radius: finite-difference radius; the step is ``radius / ||v||``.

    Returns:
        the hypergradient for each target (zeros where a target does not influence the loss) and L_val(theta').
    """
    if method not in HYPERGRADIENT_METHODS:
        raise ValueError(f"hypergradient method must be one of {HYPERGRADIENT_METHODS}, got '{method}'.")
    names = list(params)
    if method == "exact":
        unrolled = {n: params[n].detach() - lr * train_grads[n] for n in names}
        loss = val_loss(unrolled)
        grads = torch.autograd.grad(loss, list(targets), allow_unused=True)
        return _zeros_for_unused(grads, targets), loss.detach()

    unrolled = {n: (params[n] - lr * train_grads[n]).detach().requires_grad_(True) for n in names}
    loss = val_loss(unrolled)
    v = torch.autograd.grad(loss, [unrolled[n] for n in names], allow_unused=True)
    v = _zeros_for_unused(v, [unrolled[n] for n in names])
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in v))
    if norm == 0:
        return [torch.zeros_like(t) for t in targets], loss.detach()
    eps = radius / norm.item()
    plus = {n: params[n].detach() + eps * g for n, g in zip(names, v)}
    minus = {n: params[n].detach() - eps * g for n, g in zip(names, v)}
    difference = synthetic_loss(plus) - synthetic_loss(minus)
    grads = torch.autograd.grad(difference, list(targets), allow_unused=True)
    scale = -lr / (2 * eps)
    return [scale * g for g in _zeros_for_unused(grads, targets)], loss.detach()


def _zeros_for_unused(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like)]
