"""GenSegTrainer: one ignite iteration runs GenSeg's three stages.

Stage I   generator weights: a pix2pix step (mask-conditioned PatchGAN + L1) on the real batch.
Stage II  segmenter: real pairs plus synthetic pairs G(augment(mask)), the synthetic images not detached.
Stage III architecture: the hypergradient of the real validation loss after one unrolled segmenter
          step, with respect to the generator's architecture logits (see ``hypergradient.py``).

A mode is three facts (:class:`ModeFacts`): whether synthetic pairs are used, whether the generator
keeps training (Stage I), and whether the feedback loop runs (Stage III):

==========  ==========  ===============  =========
mode        synthetic   trains G         feedback
==========  ==========  ===============  =========
end2end     yes         yes              yes       GenSeg
joint       yes         yes              no        end2end without Stage III: ``end2end - joint`` is the feedback's own value
separate    yes         no (warm-up)     no        a frozen pix2pix generator
baseline    no          no               no        real pairs only
==========  ==========  ===============  =========

All modes share the data, the seed, the real batch stream (the warm-up draws from its own random
state) and the segmenter steps; the modes with synthetic pairs push twice the images per step.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from ignite.engine import Events
from monai.engines.trainer import Trainer
from monai.engines.utils import IterationEvents, default_prepare_batch
from monai.inferers import Inferer, SimpleInferer
from monai.utils import CommonKeys as Keys
from torch.func import functional_call
from monai.transforms import Randomizable
from torch.optim import Optimizer

from monai_genseg.engines.hypergradient import (
    HYPERGRADIENT_METHODS,
    UNROLLS,
    adam_update,
    check_unrollable,
    sgd_update,
    unrolled_hypergradient,
)
from monai_genseg.networks.generator import MaskToImageGenerator, one_hot_mask


@dataclass(frozen=True)
class ModeFacts:
    """What a training mode does: uses synthetic pairs, keeps training the generator, runs the feedback loop."""

    synthetic: bool
    trains_generator: bool
    feedback: bool


MODES = {
    "end2end": ModeFacts(synthetic=True, trains_generator=True, feedback=True),
    "joint": ModeFacts(synthetic=True, trains_generator=True, feedback=False),
    "separate": ModeFacts(synthetic=True, trains_generator=False, feedback=False),
    "baseline": ModeFacts(synthetic=False, trains_generator=False, feedback=False),
}


class GenSegTrainer(Trainer):
    """Bilevel GenSeg training of a segmenter with a searchable mask-to-image generator.

    As in :class:`monai.engines.SupervisedTrainer`, ``state.output`` is decollated at
    ``IterationEvents.MODEL_COMPLETED``: one dict per batch item with ``image``, ``label``, ``pred``,
    ``synthetic_image``/``synthetic_label`` and every stage's loss replicated, so MONAI's usual
    ``from_engine(['loss'], first=True)`` (StatsHandler, MLFlowHandler, ``--tracking mlflow``) works.

    Args:
        device: device to train on.
        max_epochs: number of epochs; the segmenter takes ``max_epochs * epoch_length`` steps in every mode.
        train_data_loader: real training pairs (``image``, ``label`` index map), augmented as usual.
        network: the segmenter (any MONAI network giving per-class logits).
        optimizer: the segmenter's optimizer.
        loss_function: segmentation loss taking (logits, label index map), e.g. ``DiceCELoss(to_onehot_y=True, softmax=True)``.
        generator: the :class:`MaskToImageGenerator`.
        generator_optimizer: optimizer over ``generator.weight_parameters()`` only.
        discriminator: conditional discriminator reading ``cat(one-hot mask, image)``, e.g. MONAI's
            ``PatchDiscriminator``; its last output is the patch logits.
        discriminator_optimizer: the discriminator's optimizer.
        arch_optimizer: optimizer over ``generator.arch_parameters()`` (required in end2end). Give it no
            weight decay: the hypergradient is ~1e-5 per logit, and a coupled decay of 1e-3 pins alpha
            near uniform (|h| / decay).
        val_data_loader: real validation pairs for the architecture step; each architecture step uses one
            batch, so give the whole (small) validation set as one batch.
        mask_augment: callable deforming a batch of label maps, e.g. ``RandMaskAugment``.
        num_classes: number of labels including background.
        mode: ``"end2end"``, ``"joint"``, ``"separate"`` or ``"baseline"`` (see :data:`MODES`).
        lambda_l1: weight of the generator's L1 term (pix2pix uses 100).
        lambda_syn: weight of the synthetic-pair loss in L_tr, reached after ``syn_rampup_iterations``.
        syn_rampup_iterations: linear ramp of ``lambda_syn`` from 0 over this many segmenter steps.
        generator_warmup_iterations: most Stage-I-only steps before segmenter training (end2end and separate).
        warmup_check_interval: warm-up steps between checks of the generator's validation L1.
        warmup_patience: checks without improvement that end the warm-up early (best weights are kept).
        generator_update_interval: run Stage I every this many iterations (end2end).
        arch_update_interval: run Stage III every this many iterations (end2end).
        hypergradient: ``"exact"`` (second order, the default) or ``"finite_difference"``.
        hypergradient_radius: radius of the finite difference.
        unroll: ``"optimizer"`` unrolls the step the segmenter's Adam/AdamW would take from its current
            moments; ``"sgd"`` unrolls ``theta - lr * g`` (DARTS), which Adam does not take.
        unrolled_lr: step size of the unrolled step; default: the segmenter optimizer's lr.
        feedback_optimizer: optional optimizer over ``generator.weight_parameters()`` with a state of its own:
            Stage III then also steps the generator weights along the hypergradient. Its learning rate is
            the feedback's weight against Stage I's pix2pix update (``state.feedback_share`` logs the ratio
            of the two update norms). Sharing the pix2pix Adam would drown the feedback in its moments.
        max_nonfinite_iterations: stop after this many consecutive iterations in which some stage's loss
            or gradient was NaN/Inf. Such an update is skipped (never applied, so never saved) and counted
            in ``state.nonfinite_skips``.
        distributed: average every stage's gradients over the ranks of the default process group before
            stepping (no DistributedDataParallel wrapper: the stages compute their gradients explicitly);
            at the end, check that all replicas hold identical weights.
        inferer: how Stage II runs the segmenter (default ``SimpleInferer``); Stage III calls it functionally.
        epoch_length, non_blocking, prepare_batch, iteration_update, postprocessing, key_train_metric,
        additional_metrics, metric_cmp_fn, train_handlers, event_names, event_to_attr, decollate,
        to_kwargs: as in :class:`monai.engines.SupervisedTrainer`.
        amp: autocast the forward passes to bfloat16 on CUDA (no gradient scaler needed).
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: nn.Module,
        optimizer: Optimizer,
        loss_function: Callable,
        generator: MaskToImageGenerator,
        generator_optimizer: Optimizer,
        discriminator: nn.Module,
        discriminator_optimizer: Optimizer,
        num_classes: int,
        arch_optimizer: Optimizer | None = None,
        val_data_loader: Iterable | None = None,
        mask_augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        mode: str = "end2end",
        lambda_l1: float = 100.0,
        lambda_syn: float = 1.0,
        syn_rampup_iterations: int = 0,
        generator_warmup_iterations: int = 0,
        warmup_check_interval: int = 25,
        warmup_patience: int = 4,
        generator_update_interval: int = 1,
        arch_update_interval: int = 1,
        hypergradient: str = "exact",
        hypergradient_radius: float = 0.01,
        unroll: str = "optimizer",
        unrolled_lr: float | None = None,
        feedback_optimizer: Optimizer | None = None,
        max_nonfinite_iterations: int = 20,
        distributed: bool = False,
        inferer: Inferer | None = None,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable = default_prepare_batch,
        iteration_update: Callable | None = None,
        postprocessing: Callable | None = None,
        key_train_metric: dict | None = None,
        additional_metrics: dict | None = None,
        metric_cmp_fn: Callable | None = None,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        event_names: list | None = None,
        event_to_attr: dict | None = None,
        decollate: bool = True,
        to_kwargs: dict | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {tuple(MODES)}, got '{mode}'.")
        if hypergradient not in HYPERGRADIENT_METHODS:
            raise ValueError(f"hypergradient must be one of {HYPERGRADIENT_METHODS}, got '{hypergradient}'.")
        if unroll not in UNROLLS:
            raise ValueError(f"unroll must be one of {UNROLLS}, got '{unroll}'.")
        facts = MODES[mode]
        if facts.feedback and (arch_optimizer is None or val_data_loader is None):
            raise ValueError(f"mode '{mode}' needs an arch_optimizer and a val_data_loader for the architecture step.")
        if facts.feedback and unroll == "optimizer":
            check_unrollable(optimizer)  # now, not at the first Stage III
        if facts.synthetic and mask_augment is None:
            raise ValueError(f"mode '{mode}' needs a mask_augment transform to make new masks.")
        extra = {} if metric_cmp_fn is None else {"metric_cmp_fn": metric_cmp_fn}
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=prepare_batch,
            iteration_update=iteration_update,
            postprocessing=postprocessing,
            key_metric=key_train_metric,
            additional_metrics=additional_metrics,
            handlers=train_handlers,
            amp=amp,
            event_names=event_names,
            event_to_attr=event_to_attr,
            decollate=decollate,
            to_kwargs=to_kwargs,
            **extra,
        )
        self.network = network
        self.inferer = SimpleInferer() if inferer is None else inferer
        self.optimizer = optimizer
        self.loss_function = loss_function
        self.generator = generator
        self.generator_optimizer = generator_optimizer
        self.discriminator = discriminator
        self.discriminator_optimizer = discriminator_optimizer
        self.arch_optimizer = arch_optimizer
        self.val_data_loader = val_data_loader
        self.mask_augment = mask_augment
        self.num_classes = num_classes
        self.mode = mode
        self.facts = facts
        self.lambda_l1 = lambda_l1
        self.lambda_syn = lambda_syn
        self.syn_rampup_iterations = syn_rampup_iterations
        self.generator_warmup_iterations = generator_warmup_iterations
        self.warmup_check_interval = warmup_check_interval
        self.warmup_patience = warmup_patience
        self.generator_update_interval = generator_update_interval
        self.arch_update_interval = arch_update_interval
        self.hypergradient = hypergradient
        self.hypergradient_radius = hypergradient_radius
        self.unroll = unroll
        self.unrolled_lr = unrolled_lr
        self.feedback_optimizer = feedback_optimizer
        self.state.feedback_share = float("nan")
        self._last_pix2pix_update = 0.0  # norm of Stage I's last weight update, the feedback share's reference
        self.max_nonfinite_iterations = max_nonfinite_iterations
        self.distributed = distributed
        self.state.nonfinite_skips = {}
        self._nonfinite_streak = 0
        self._skipped_this_iteration = False
        self._val_batches: Iterator | None = None
        self.add_event_handler(Events.STARTED, self._warmup_on_fresh_start)
        if distributed:
            self.add_event_handler(Events.COMPLETED, self.check_replicas)

    # ------------------------------------------------------------------ the iteration
    def _iteration(self, engine: GenSegTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        image, label = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)[:2]
        it = engine.state.iteration
        self._skipped_this_iteration = False
        facts = self.facts
        output: dict[str, Any] = {Keys.IMAGE: image, Keys.LABEL: label, "lambda_syn": self.current_lambda_syn()}
        arch_step = facts.feedback and it % self.arch_update_interval == 0 and output["lambda_syn"] > 0
        if facts.trains_generator and it % self.generator_update_interval == 0:
            output.update(self.generator_step(image, label, measure_update=arch_step and self.feedback_optimizer is not None))
        masks = synthetic = None
        if facts.synthetic:
            masks, synthetic = self.synthesize(label, keep_graph=arch_step)
            output["synthetic_image"], output["synthetic_label"] = synthetic.detach(), masks
        if it == 1:
            per_step = f"{image.shape[0]} real" + (f" + {masks.shape[0]} synthetic" if masks is not None else "")
            self.logger.info(f"mode {self.mode}: each segmenter step reads {per_step} images ({self.facts}).")
        grads, seg_out = self.segmenter_step(image, label, masks, synthetic, for_architecture=arch_step)
        output.update(seg_out)
        if arch_step:
            output.update(self.architecture_step(masks, synthetic, grads))
        grads = self._average([g.detach() for g in grads])  # Stage III above used this rank's own unrolled step
        if self._all_finite("segmenter", *grads):
            self._apply(self.optimizer, list(self.network.parameters()), grads)
        self._count_nonfinite_streak()
        engine.state.output = output
        engine.fire_event(IterationEvents.MODEL_COMPLETED)  # MONAI's decollation (and user handlers) hook in here
        return engine.state.output

    # ------------------------------------------------------------------ the stages
    def generator_step(self, image: torch.Tensor, label: torch.Tensor, measure_update: bool = False) -> dict[str, float]:
        """Stage I: one discriminator step, then one step on the generator weights W (not alpha).

        ``measure_update`` records the norm of the weight update, against which Stage III's feedback share is logged.
        """
        self.generator.train()
        self.discriminator.train()
        condition = one_hot_mask(label, self.num_classes).to(image.dtype)
        with self._autocast():
            fake = self.generator(condition)
            pairs = torch.cat([torch.cat([condition, image], 1), torch.cat([condition, fake.detach()], 1)])
            logits = self._patch_logits(pairs)
            n = image.shape[0]
            loss_d = 0.5 * (
                F.binary_cross_entropy_with_logits(logits[:n], torch.ones_like(logits[:n]))
                + F.binary_cross_entropy_with_logits(logits[n:], torch.zeros_like(logits[n:]))
            )
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss_d.backward()
        d_grads = self._average([p.grad for p in self.discriminator.parameters() if p.grad is not None])
        if self._all_finite("discriminator", loss_d, *d_grads):
            self.discriminator_optimizer.step()

        with self._autocast():
            fooled = self._patch_logits(torch.cat([condition, fake], 1))
            loss_adv = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
            loss_l1 = (fake.float() - image.float()).abs().mean()
            loss_g = loss_adv + self.lambda_l1 * loss_l1
        self.generator_optimizer.zero_grad(set_to_none=True)
        loss_g.backward(inputs=self.generator.weight_parameters())
        g_grads = self._average([p.grad for p in self.generator.weight_parameters() if p.grad is not None])
        if self._all_finite("generator", loss_g, *g_grads):
            before = [w.detach().clone() for w in self.generator.weight_parameters()] if measure_update else None
            self.generator_optimizer.step()
            if before is not None:  # the size of the pix2pix update, against which the feedback's share is logged
                moved = sum(((w.detach() - b) ** 2).sum() for w, b in zip(self.generator.weight_parameters(), before))
                self._last_pix2pix_update = float(torch.sqrt(moved))
        return {"loss_discriminator": loss_d.item(), "loss_generator": loss_g.item(), "loss_generator_l1": loss_l1.item()}

    def synthesize(self, label: torch.Tensor, keep_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """New masks from the real ones and their synthetic images; on the generator's graph for Stage III."""
        with torch.no_grad():
            masks = self.mask_augment(label)  # type: ignore[misc]
        grad = torch.enable_grad() if keep_graph else torch.no_grad()
        with grad, self._autocast():
            self.generator.train()
            synthetic = self.generator(one_hot_mask(masks, self.num_classes))
        return masks, synthetic

    def segmenter_step(
        self,
        image: torch.Tensor,
        label: torch.Tensor,
        masks: torch.Tensor | None,
        synthetic: torch.Tensor | None,
        for_architecture: bool = False,
    ) -> tuple[list[torch.Tensor], dict[str, Any]]:
        """Stage II: gradient of L_tr = L(S(x), y) + lambda_syn * L(S(x~), m~) for the segmenter weights.

        The real and synthetic halves run as separate forward passes, so the exact hypergradient's
        second-order pass (``create_graph``) only ever traverses the synthetic half. The step itself is
        applied after Stage III, which needs the weights before it.
        """
        self.network.train()
        params = list(self.network.parameters())
        with self._autocast():
            logits = self.inferer(image, self.network)
            loss_real = self.loss_function(logits, label)
            loss_syn = torch.zeros_like(loss_real)
            if synthetic is not None:
                loss_syn = self.loss_function(self.inferer(synthetic.to(image.dtype), self.network), masks)
            loss = loss_real + self.current_lambda_syn() * loss_syn
        exact = for_architecture and self.hypergradient == "exact"
        grads = torch.autograd.grad(loss, params, create_graph=exact, retain_graph=for_architecture, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
        out = {Keys.PRED: logits.detach(), Keys.LOSS: loss.detach(), "loss_real": loss_real.item(), "loss_synthetic": loss_syn.item()}
        return grads, out

    def architecture_step(self, masks: torch.Tensor, synthetic: torch.Tensor, grads: Sequence[torch.Tensor]) -> dict[str, float]:
        """Stage III: step alpha (and, with a ``feedback_optimizer``, the weights) along the hypergradient."""
        arch = self.generator.arch_parameters()
        hyper, loss_val = self.architecture_hypergradient(masks, synthetic, grads)
        hyper = self._average(hyper)
        out = {"loss_val": loss_val.item(), "hypergradient_norm": float(torch.sqrt(sum((h.double() ** 2).sum() for h in hyper[: len(arch)])))}
        if not self._all_finite("architecture", *hyper):
            return out
        self._apply(self.arch_optimizer, arch, hyper[: len(arch)])
        if self.feedback_optimizer is not None:
            weights = self.generator.weight_parameters()
            before = [w.detach().clone() for w in weights]
            self._apply(self.feedback_optimizer, weights, hyper[len(arch) :])
            moved = torch.sqrt(sum(((w.detach() - b) ** 2).sum() for w, b in zip(weights, before)))
            pix2pix = self._last_pix2pix_update
            if pix2pix > 0:
                self.state.feedback_share = float(moved / (moved + pix2pix))
                out["feedback_share"] = self.state.feedback_share
        return out

    def architecture_hypergradient(
        self, masks: torch.Tensor, synthetic: torch.Tensor, grads: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """d L_val(theta') / d alpha on one whole real validation batch, theta' one unrolled segmenter step.

        Only the synthetic term of L_tr depends on alpha, so only it is re-evaluated; it reuses the
        synthetic batch (and its generator graph) from Stage II.
        """
        val_image, val_label = self._next_val_batch()
        named = dict(self.network.named_parameters())
        theta = {n: p.detach() for n, p in named.items()}
        lam = self.current_lambda_syn()

        def val_loss(params):
            with self._autocast():
                return self.loss_function(functional_call(self.network, params, (val_image,)), val_label)

        def synthetic_loss(params):
            with self._autocast():
                return lam * self.loss_function(functional_call(self.network, params, (synthetic,)), masks)

        targets = self.generator.arch_parameters()
        if self.feedback_optimizer is not None:
            targets = targets + self.generator.weight_parameters()
        if self.unroll == "optimizer":
            update = adam_update(self.optimizer, named, lr=self.unrolled_lr)
        else:
            update = sgd_update(self._unrolled_lr())
        return unrolled_hypergradient(
            val_loss,
            synthetic_loss,
            theta,
            dict(zip(named, grads)),
            targets,
            method=self.hypergradient,
            radius=self.hypergradient_radius,
            update=update,
        )

    # ------------------------------------------------------------------ warm-up
    def warmup_generator(self) -> int:
        """Stage I alone until the generator's validation L1 stops improving; returns the steps taken."""
        if not self.facts.synthetic or self.generator_warmup_iterations <= 0:
            return 0
        # the warm-up draws real batches from its own random state, so Stage II then reads the same real
        # batch stream in every mode (the baseline has no warm-up)
        with _isolated_randomness(self.data_loader, self.state.device):
            return self._warmup_loop()

    def _warmup_loop(self) -> int:
        best, best_state, stale, step = math.inf, None, 0, 0
        batches = self._cycle(self.data_loader)
        for step in range(1, self.generator_warmup_iterations + 1):
            image, label = self.prepare_batch(next(batches), self.state.device, self.non_blocking, **self.to_kwargs)[:2]
            losses = self.generator_step(image, label)
            if step % self.warmup_check_interval and step != self.generator_warmup_iterations:
                continue
            val_l1 = self.generator_validation_l1() if self.val_data_loader is not None else losses["loss_generator_l1"]
            self.logger.info(f"generator warm-up {step}/{self.generator_warmup_iterations}: val L1 {val_l1:.4f}")
            if val_l1 < best - 1e-4:
                best, best_state, stale = val_l1, copy.deepcopy(self.generator.state_dict()), 0
            else:
                stale += 1
                if stale >= self.warmup_patience:
                    self.logger.info(f"generator warm-up stopped early at step {step}: val L1 no longer improves.")
                    break
        if best_state is not None:
            self.generator.load_state_dict(best_state)
        self.state.generator_warmup_steps = step
        return step

    def generator_validation_l1(self) -> float:
        """Mean |G(y) - x| on one real validation batch, the warm-up's stopping signal."""
        image, label = self._next_val_batch()
        with torch.no_grad(), self._autocast():
            fake = self.generator(one_hot_mask(label, self.num_classes).to(image.dtype))
        return self._average([(fake.float() - image.float()).abs().mean()])[0].item()

    def _warmup_on_fresh_start(self, engine: GenSegTrainer) -> None:
        if engine.state.iteration == 0:
            self.warmup_generator()

    # ------------------------------------------------------------------ helpers
    def current_lambda_syn(self) -> float:
        """lambda_syn on its linear ramp from 0 over ``syn_rampup_iterations`` segmenter steps."""
        if not self.facts.synthetic:
            return 0.0
        if self.syn_rampup_iterations <= 0:
            return float(self.lambda_syn)
        return float(self.lambda_syn) * min(1.0, self.state.iteration / self.syn_rampup_iterations)

    def _all_finite(self, stage: str, *tensors: torch.Tensor) -> bool:
        """True if every tensor is finite; otherwise count and log a skipped ``stage`` update."""
        if all(bool(torch.isfinite(t).all()) for t in tensors):
            return True
        skips = self.state.nonfinite_skips
        skips[stage] = skips.get(stage, 0) + 1
        self._skipped_this_iteration = True
        self.logger.warning(
            f"iteration {self.state.iteration}: non-finite {stage} loss or gradient, update skipped "
            f"({skips[stage]} {stage} updates skipped so far)."
        )
        return False

    def _average(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Mean of each tensor over the ranks (in place), when training is distributed."""
        if not self.distributed:
            return list(tensors)
        world = torch.distributed.get_world_size()
        for t in tensors:
            torch.distributed.all_reduce(t)
            t.div_(world)
        return list(tensors)

    def check_replicas(self, engine: GenSegTrainer | None = None) -> None:
        """Raise if the ranks' segmenter, generator (alpha included) or discriminator weights differ."""
        for name, net in (("segmenter", self.network), ("generator", self.generator), ("discriminator", self.discriminator)):
            local = torch.stack([p.detach().double().sum() for p in net.parameters()])
            everyone = [torch.zeros_like(local) for _ in range(torch.distributed.get_world_size())]
            torch.distributed.all_gather(everyone, local)
            if any(not torch.allclose(e, everyone[0], rtol=1e-6, atol=1e-8) for e in everyone):
                raise RuntimeError(f"distributed training diverged: the {name} weights differ between ranks.")
        self.logger.info(f"rank {torch.distributed.get_rank()}: replicas consistent (segmenter, generator, discriminator)")

    def _count_nonfinite_streak(self) -> None:
        self._nonfinite_streak = self._nonfinite_streak + 1 if self._skipped_this_iteration else 0
        if self._nonfinite_streak >= self.max_nonfinite_iterations:
            raise RuntimeError(
                f"training stopped: {self._nonfinite_streak} consecutive iterations had NaN/Inf losses or gradients "
                f"(skipped updates per stage: {self.state.nonfinite_skips}). The last saved checkpoint is clean; "
                "lower the learning rates or check the data for NaN/Inf values."
            )

    def _patch_logits(self, pairs: torch.Tensor) -> torch.Tensor:
        out = self.discriminator(pairs)
        return out[-1] if isinstance(out, (list, tuple)) else out

    def _unrolled_lr(self) -> float:
        """The SGD unroll's step size (``unroll="sgd"``)."""
        return float(self.unrolled_lr if self.unrolled_lr is not None else self.optimizer.param_groups[0]["lr"])

    def _autocast(self):
        if self.amp and torch.device(self.state.device).type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _next_val_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One real validation batch, drawn with a torch random stream of its own.

        A new epoch of a DataLoader draws its seed from torch's generator; with the global one, Stage III
        (end2end only) would shift the training shuffle and the real batch stream would differ between modes.
        """
        if self._val_batches is None:
            self._val_batches = self._cycle(self.val_data_loader)  # type: ignore[arg-type]
            self._val_rng = torch.Generator().manual_seed(torch.initial_seed() + 1).get_state()
        outer = torch.get_rng_state()
        torch.set_rng_state(self._val_rng)
        try:
            batch = next(self._val_batches)
        finally:
            self._val_rng = torch.get_rng_state()
            torch.set_rng_state(outer)
        return self.prepare_batch(batch, self.state.device, self.non_blocking, **self.to_kwargs)[:2]

    @staticmethod
    def _cycle(loader: Iterable) -> Iterator:
        while True:
            yield from loader

    @staticmethod
    def _apply(optimizer: Optimizer | None, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
        """Step ``optimizer`` with precomputed gradients."""
        if optimizer is None:
            return
        for p, g in zip(params, grads):
            p.grad = g.detach()
        optimizer.step()


def _randomizables(obj: Any, found: list | None = None, depth: int = 0) -> list[Randomizable]:
    """Every MONAI ``Randomizable`` reachable from a transform chain (Compose, wrappers), once each."""
    found = [] if found is None else found
    if obj is None or depth > 4 or any(obj is f for f in found):
        return found
    if isinstance(obj, Randomizable):
        found.append(obj)
    if isinstance(obj, (list, tuple)):
        children = list(obj)
    else:
        attributes = [v for v in getattr(obj, "__dict__", {}).values() if isinstance(v, Randomizable)]
        children = list(getattr(obj, "transforms", None) or []) + attributes
    for child in children:
        _randomizables(child, found, depth + 1)
    return found


@contextlib.contextmanager
def _isolated_randomness(loader: Iterable, device: str | torch.device):
    """Run a block without moving torch's or the loader transforms' random states.

    Loader workers are seeded from torch's generator when an epoch starts and the main process's
    transforms keep their own ``RandomState``: restoring both leaves the training stream untouched.
    """
    transforms = _randomizables(getattr(getattr(loader, "dataset", None), "transform", None))
    states = [t.R.get_state() for t in transforms]
    cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            for t, state in zip(transforms, states):
                t.R.set_state(state)
