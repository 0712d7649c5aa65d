"""The architecture hypergradient of GenSeg's bilevel problem.

The segmenter weights theta are trained on L_tr(theta, alpha), whose synthetic term depends on the
generator's architecture logits alpha (and weights). alpha is chosen to minimise the validation loss
after one unrolled training step, L_val(theta'(alpha)) with theta' = theta - U(grad_theta L_tr(theta, alpha)),
where U is the update the segmenter's optimizer would make: ``lr * g`` for SGD, or Adam's
``lr * m_hat / (sqrt(v_hat) + eps)`` from its current moments (:func:`adam_update`). Unrolling plain SGD
while the segmenter steps with Adam differentiates a step that never happens (on a small net the real
Adam step was 20x longer than ``lr * g`` and pointed elsewhere, cosine 0.46).

By the chain rule the hypergradient is  -d/d alpha [grad_theta L_tr(theta, alpha) . u]  with
u = U'(g)^T v and v = grad L_val(theta'); U is elementwise, so u costs one cheap backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch.optim import Optimizer

ParamDict = Mapping[str, torch.Tensor]
UpdateFn = Callable[[ParamDict], dict[str, torch.Tensor]]
HYPERGRADIENT_METHODS = ("finite_difference", "exact")
UNROLLS = ("optimizer", "sgd")


def sgd_update(lr: float) -> UpdateFn:
    """The plain gradient step ``lr * g`` (the DARTS unroll)."""
    return lambda grads: {n: lr * g for n, g in grads.items()}


def check_unrollable(optimizer: Optimizer) -> None:
    """Refuse an optimizer whose step :func:`adam_update` cannot mirror."""
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        raise ValueError(
            "an optimizer-consistent unroll supports torch.optim.Adam and AdamW, "
            f"got {type(optimizer).__name__}; use unroll='sgd'."
        )


def adam_update(optimizer: Optimizer, named_params: Mapping[str, torch.Tensor], lr: float | None = None) -> UpdateFn:
    """The step ``torch.optim.Adam``/``AdamW`` would take next from gradients g, differentiable in g.

    It reads the optimizer's current moments and step count (none yet: a first step), so the unrolled
    theta' is the theta the optimizer is about to produce. Coupled weight decay (Adam) is added to g as
    Adam does; decoupled decay (AdamW) does not depend on g and is added to the update as it is.
    """
    check_unrollable(optimizer)
    group_of = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    decoupled = isinstance(optimizer, torch.optim.AdamW)

    def update(grads: ParamDict) -> dict[str, torch.Tensor]:
        out = {}
        for name, g in grads.items():
            p = named_params[name]
            group, state = group_of[id(p)], optimizer.state.get(p, {})
            (b1, b2), eps, wd = group["betas"], group["eps"], group["weight_decay"]
            step_lr = float(group["lr"] if lr is None else lr)
            if group.get("amsgrad") or group.get("maximize"):
                raise ValueError("the optimizer-consistent unroll does not support amsgrad or maximize.")
            t = float(state["step"]) + 1 if "step" in state else 1.0
            if wd and not decoupled:
                g = g + wd * p.detach()
            m = (1 - b1) * g + (b1 * state["exp_avg"] if "exp_avg" in state else 0.0)
            v = (1 - b2) * g * g + (b2 * state["exp_avg_sq"] if "exp_avg_sq" in state else 0.0)
            # clamp: sqrt's derivative at an exactly zero moment (an unused weight) would be inf * 0 = NaN
            denom = (v / (1 - b2**t)).clamp_min(1e-30).sqrt() + eps
            step = step_lr * (m / (1 - b1**t)) / denom
            out[name] = step + (step_lr * wd * p.detach() if wd and decoupled else 0.0)
        return out

    return update


def unrolled_hypergradient(
    val_loss: Callable[[ParamDict], torch.Tensor],
    synthetic_loss: Callable[[ParamDict], torch.Tensor],
    params: ParamDict,
    train_grads: ParamDict,
    targets: Sequence[torch.Tensor],
    lr: float | None = None,
    method: str = "exact",
    radius: float = 0.01,
    update: UpdateFn | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gradient of ``L_val(params - update(train_grads))`` with respect to ``targets``.

    Args:
        val_loss: segmenter loss on real validation data for a given set of segmenter weights.
        synthetic_loss: the alpha-dependent part of L_tr (weighted synthetic-pair loss) for given weights;
            its graph must reach ``targets``. The real-data term does not depend on alpha and is left out.
        params: current segmenter weights theta (detached).
        train_grads: grad_theta L_tr at ``params``. For ``"exact"`` it must carry its graph
            (``create_graph=True``); for ``"finite_difference"`` it may be detached.
        targets: tensors to differentiate with respect to: alpha, optionally also generator weights.
        lr: step size of a plain SGD unroll, used when ``update`` is not given.
        method: ``"exact"`` differentiates through the unrolled step with autograd (second order);
            ``"finite_difference"`` uses the DARTS central difference of grad_alpha L_tr around theta.
        radius: finite-difference radius; the step is ``radius / ||u||``.
        update: the unrolled update as a function of the gradients (:func:`sgd_update`, :func:`adam_update`).

    Returns:
        the hypergradient for each target (zeros where a target does not influence the loss) and L_val(theta').
    """
    if method not in HYPERGRADIENT_METHODS:
        raise ValueError(f"hypergradient method must be one of {HYPERGRADIENT_METHODS}, got '{method}'.")
    if update is None:
        if lr is None:
            raise ValueError("give the unrolled step as `update`, or an SGD step size `lr`.")
        update = sgd_update(lr)
    names = list(params)
    if method == "exact":
        step = update({n: train_grads[n] for n in names})
        unrolled = {n: params[n].detach() - step[n] for n in names}
        loss = val_loss(unrolled)
        grads = torch.autograd.grad(loss, list(targets), allow_unused=True)
        return _zeros_for_unused(grads, targets), loss.detach()

    g = {n: train_grads[n].detach().requires_grad_(True) for n in names}
    step = update(g)
    unrolled = {n: (params[n].detach() - step[n]).detach().requires_grad_(True) for n in names}
    loss = val_loss(unrolled)
    v = _zeros_for_unused(
        torch.autograd.grad(loss, [unrolled[n] for n in names], allow_unused=True), [unrolled[n] for n in names]
    )
    # u = U'(g)^T v: how a change of the gradient moves theta' along v (lr * v for SGD)
    u = torch.autograd.grad([step[n] for n in names], [g[n] for n in names], grad_outputs=v, allow_unused=True)
    u = _zeros_for_unused(u, [g[n] for n in names])
    norm = torch.sqrt(sum((x.double() ** 2).sum() for x in u))
    if norm == 0:
        return [torch.zeros_like(t) for t in targets], loss.detach()
    eps = radius / norm.item()
    plus = {n: params[n].detach() + eps * x for n, x in zip(names, u)}
    minus = {n: params[n].detach() - eps * x for n, x in zip(names, u)}
    difference = synthetic_loss(plus) - synthetic_loss(minus)
    grads = torch.autograd.grad(difference, list(targets), allow_unused=True)
    return [-g_ / (2 * eps) for g_ in _zeros_for_unused(grads, targets)], loss.detach()


def _zeros_for_unused(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like)]
