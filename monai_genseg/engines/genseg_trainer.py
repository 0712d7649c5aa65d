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
joint       yes         yes              no        end2end without Stage III: ``end2end - joint`` is
                                                   the feedback's own value
separate    yes         no (warm-up)     no        a frozen pix2pix generator
baseline    no          no               no        real pairs only
==========  ==========  ===============  =========

All modes share the data, the seed, the real batch stream (the warm-up, a
:class:`monai_genseg.handlers.GeneratorWarmup`, draws from its own random state) and the segmenter
steps; the modes with synthetic pairs push twice the images per step.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from ignite.engine import EventEnum, Events
from monai.engines.trainer import Trainer
from monai.engines.utils import IterationEvents, default_prepare_batch
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import Randomizable
from monai.utils import CommonKeys as Keys
from monai.utils import convert_to_tensor
from torch.func import functional_call
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


@dataclass(frozen=True)
class GenerationSettings:
    """How synthetic pairs are made and weighed (Stages I and II).

    Attributes:
        lambda_l1: weight of the generator's L1 term (pix2pix uses 100).
        lambda_syn: weight of the synthetic-pair loss in L_tr, reached after ``syn_rampup_iterations``.
        syn_rampup_iterations: linear ramp of ``lambda_syn`` from 0 over this many segmenter steps, because a
            young generator's images hurt more than help.
        generator_update_interval: run Stage I every this many iterations (end2end and joint).
    """

    lambda_l1: float = 100.0
    lambda_syn: float = 1.0
    syn_rampup_iterations: int = 0
    generator_update_interval: int = 1

    def __post_init__(self) -> None:
        _check_interval("generator_update_interval", self.generator_update_interval)


@dataclass(frozen=True)
class FeedbackSettings:
    """Stage III: how the hypergradient of the validation loss is taken.

    Attributes:
        arch_update_interval: run Stage III every this many iterations (end2end).
        hypergradient: ``"exact"`` (second order, the default) or ``"finite_difference"`` (DARTS).
        hypergradient_radius: radius of the finite difference.
        unroll: ``"optimizer"`` unrolls the step the segmenter's Adam/AdamW would take from its current
            moments; ``"sgd"`` unrolls ``theta - lr * g`` (DARTS), which Adam does not take.
        unrolled_lr: step size of the unrolled step; default: the segmenter optimizer's lr.
    """

    arch_update_interval: int = 1
    hypergradient: str = "exact"
    hypergradient_radius: float = 0.01
    unroll: str = "optimizer"
    unrolled_lr: float | None = None

    def __post_init__(self) -> None:
        _check_interval("arch_update_interval", self.arch_update_interval)
        _check_choice("hypergradient", self.hypergradient, HYPERGRADIENT_METHODS)
        _check_choice("unroll", self.unroll, UNROLLS)


def _check_interval(field: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{field} must be an integer >= 1, got {value!r}.")


def _check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {allowed}, got '{value}'.")


def _settings(name: str, value: Any, kind: type) -> Any:
    """``value``, or the default ``kind()`` for None; anything else is a wiring mistake."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__} or None, got {type(value).__name__}.")
    return value


class GenSegEvents(EventEnum):
    """The stage events a :class:`GenSegTrainer` fires, for handlers that hook into one stage.

    Within an iteration, ``state.output`` at a stage's event is that iteration's output so far: a dict with
    the batch and the losses of the stages that have run (decollated later, at ``IterationEvents.MODEL_COMPLETED``).
    """

    WARMUP_COMPLETED = "warmup_completed"  # the generator warm-up, before the first iteration (when it ran)
    GENERATOR_COMPLETED = "generator_completed"  # Stage I, the pix2pix step (on the iterations that run it)
    SEGMENTER_COMPLETED = "segmenter_completed"  # Stage II's gradients, computed but not yet applied
    ARCHITECTURE_COMPLETED = "architecture_completed"  # Stage III, alpha stepped (on the iterations that run it)


def bce_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """pix2pix's discriminator loss on patch logits: the mean of BCE(real, 1) and BCE(fake, 0)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def bce_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """pix2pix's adversarial generator loss on patch logits: BCE(fake, 1), the non-saturating GAN loss."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class GenSegTrainer(Trainer):
    """Bilevel GenSeg training of a segmenter with a searchable mask-to-image generator.

    Each iteration runs :meth:`pix2pix_step` (Stage I), :meth:`synthesize`, :meth:`segmenter_gradients`
    (Stage II), :meth:`architecture_step` (Stage III) and :meth:`segmenter_update`, firing a
    :class:`GenSegEvents` event after each stage. The generator warm-up before training is the handler
    :class:`monai_genseg.handlers.GeneratorWarmup`, which calls :meth:`warmup_generator`.

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
        loss_function: segmentation loss taking (logits, label index map),
            e.g. ``DiceCELoss(to_onehot_y=True, softmax=True)``.
        generator: the :class:`MaskToImageGenerator`.
        generator_optimizer: optimizer over ``generator.weight_parameters()`` only.
        discriminator: conditional discriminator reading ``cat(one-hot mask, image)``, e.g. MONAI's
            ``PatchDiscriminator``; its last output is the patch logits.
        discriminator_optimizer: the discriminator's optimizer.
        num_classes: number of labels including background.
        arch_optimizer: optimizer over ``generator.arch_parameters()`` (required in end2end). Give it no
            weight decay: the hypergradient is ~1e-5 per logit, and a coupled decay of 1e-3 pins alpha
            near uniform (|h| / decay).
        val_data_loader: real validation pairs for the architecture step and the warm-up's stopping signal;
            each architecture step uses one batch, so give the whole (small) validation set as one batch.
        mask_augment: callable deforming a batch of label maps, e.g. ``RandMaskAugment`` (modes with synthetic pairs).
        mode: ``"end2end"``, ``"joint"``, ``"separate"`` or ``"baseline"`` (see :data:`MODES`).
        generation: :class:`GenerationSettings`: the L1 weight, lambda_syn and its ramp, Stage I's interval
            (default ``GenerationSettings()``).
        feedback: :class:`FeedbackSettings`: Stage III's interval and how it takes the hypergradient
            (default ``FeedbackSettings()``: exact, unrolling the segmenter optimizer's own step).
        feedback_optimizer: optional optimizer over ``generator.weight_parameters()`` with a state of its own:
            Stage III then also steps the generator weights along the hypergradient. Its learning rate is
            the feedback's weight against Stage I's pix2pix update (``state.feedback_share`` logs the ratio
            of the two update norms). Sharing the pix2pix Adam would drown the feedback in its moments.
        d_loss_function: the discriminator's loss from (real patch logits, fake patch logits), as in
            :class:`monai.engines.GanTrainer`; default :func:`bce_discriminator_loss` (pix2pix).
        g_loss_function: the generator's adversarial loss from the fake patch logits; default
            :func:`bce_generator_loss`. The L1 term, ``lambda_l1`` of ``generation``, is added to it.
        max_nonfinite_iterations: stop after this many consecutive iterations in which some stage's loss
            or gradient was NaN/Inf. Such an update is skipped (never applied, so never saved) and counted
            in ``state.nonfinite_skips``.
        distributed: average every stage's gradients over the ranks of the default process group before
            stepping (no DistributedDataParallel wrapper: the stages compute their gradients explicitly);
            at the end, check that all replicas hold identical weights.
        inferer: how Stage II runs the segmenter (default ``SimpleInferer``); Stage III calls it functionally.
        amp: autocast the forward passes to bfloat16 on CUDA (no gradient scaler needed).
        cpu_bf16: with ``amp``, autocast to bfloat16 on a CPU too: about twice as fast on cores with AMX or
            AVX512-BF16, slower where it is emulated, so the training plan measures before it sets it.
        event_names: more custom events to register; :class:`GenSegEvents` are always registered.
        epoch_length, non_blocking, prepare_batch, iteration_update, postprocessing, key_train_metric,
        additional_metrics, metric_cmp_fn, train_handlers, event_to_attr, decollate,
        to_kwargs: as in :class:`monai.engines.SupervisedTrainer`.
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
        generation: GenerationSettings | None = None,
        feedback: FeedbackSettings | None = None,
        feedback_optimizer: Optimizer | None = None,
        d_loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        g_loss_function: Callable[[torch.Tensor], torch.Tensor] | None = None,
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
        cpu_bf16: bool = False,
        event_names: list | None = None,
        event_to_attr: dict | None = None,
        decollate: bool = True,
        to_kwargs: dict | None = None,
    ) -> None:
        _check_choice("mode", mode, tuple(MODES))
        generation = _settings("generation", generation, GenerationSettings)
        feedback = _settings("feedback", feedback, FeedbackSettings)
        facts = MODES[mode]
        if facts.feedback and (arch_optimizer is None or val_data_loader is None):
            raise ValueError(f"mode '{mode}' needs an arch_optimizer and a val_data_loader for the architecture step.")
        if facts.feedback and feedback.unroll == "optimizer":
            check_unrollable(optimizer)  # now, not at the first Stage III
        if facts.synthetic and mask_augment is None:
            raise ValueError(f"mode '{mode}' needs a mask_augment transform to make new masks.")
        extra = {} if metric_cmp_fn is None else {"metric_cmp_fn": metric_cmp_fn}
        # set before the train handlers attach (in super().__init__), which may read the mode's facts
        self.mode, self.facts = mode, facts  # the methods read the facts; the mode's name is for the log
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
            # registered before the handlers attach, so a train handler can hook into a stage
            event_names=[GenSegEvents, *(e for e in event_names or [] if e is not GenSegEvents)],
            event_to_attr=event_to_attr,
            decollate=decollate,
            to_kwargs=to_kwargs,
            **extra,
        )
        if facts.feedback and len(list(network.named_parameters(remove_duplicate=False))) != len(
            list(network.parameters())
        ):
            raise ValueError(
                f"mode {mode}: the segmenter registers some modules twice; torch.func.functional_call, which the "
                "feedback's hypergradient uses, does not restore such a network's weights (keep one registration)"
            )
        self.generation, self.feedback = generation, feedback
        self.num_classes, self.mask_augment = num_classes, mask_augment
        # Stage I: the generator weights against the discriminator
        self.generator, self.generator_optimizer = generator, generator_optimizer
        self.discriminator, self.discriminator_optimizer = discriminator, discriminator_optimizer
        self.d_loss_function = bce_discriminator_loss if d_loss_function is None else d_loss_function
        self.g_loss_function = bce_generator_loss if g_loss_function is None else g_loss_function
        # Stage II: the segmenter
        self.network, self.optimizer, self.loss_function = network, optimizer, loss_function
        self.inferer = SimpleInferer() if inferer is None else inferer
        self.cpu_bf16 = bool(cpu_bf16)
        # Stage III: alpha (and, with a feedback_optimizer, the generator weights) on the validation loss
        self.arch_optimizer, self.feedback_optimizer = arch_optimizer, feedback_optimizer
        self.val_data_loader = val_data_loader
        self._val_batches: Iterator | None = None
        self._last_pix2pix_update = 0.0  # norm of Stage I's last weight update, the feedback share's reference
        self.state.feedback_share = float("nan")
        # NaN/Inf safety and replicas
        self.max_nonfinite_iterations, self.distributed = max_nonfinite_iterations, distributed
        self.state.nonfinite_skips = {}
        self._nonfinite_streak = 0
        self._skipped_this_iteration = False
        self.add_event_handler(Events.COMPLETED, self._log_steps_trained)
        if distributed:
            self.add_event_handler(Events.COMPLETED, self.check_replicas)

    # ------------------------------------------------------------------ the iteration
    def _iteration(self, engine: GenSegTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        image, label = engine._pair(batchdata)
        self._skipped_this_iteration = False
        output: dict[str, Any] = {Keys.IMAGE: image, Keys.LABEL: label, "lambda_syn": self.current_lambda_syn()}
        engine.state.output = output  # what the stage events see: this iteration's output so far
        stage_one, stage_three = self._stages_due(engine.state.iteration, output["lambda_syn"])
        if stage_one:
            measure = stage_three and self.feedback_optimizer is not None  # Stage III's feedback share reads it
            output.update(self.pix2pix_step(image, label, measure_update=measure))
            engine.fire_event(GenSegEvents.GENERATOR_COMPLETED)
        masks = synthetic = None
        if self.facts.synthetic:
            masks, synthetic = self.synthesize(label, keep_graph=stage_three)
            output["synthetic_image"], output["synthetic_label"] = synthetic.detach(), masks
        if engine.state.iteration == 1:
            self._log_batch_makeup(image, masks)
        grads, segmenter_out = self.segmenter_gradients(image, label, masks, synthetic, for_architecture=stage_three)
        output.update(segmenter_out)
        engine.fire_event(GenSegEvents.SEGMENTER_COMPLETED)
        if stage_three:
            output.update(self.architecture_step(masks, synthetic, grads))
            engine.fire_event(GenSegEvents.ARCHITECTURE_COMPLETED)
        self.segmenter_update(grads)
        self._count_nonfinite_streak()
        engine.state.output = output
        engine.fire_event(IterationEvents.MODEL_COMPLETED)  # MONAI's decollation (and user handlers) hook in here
        return engine.state.output

    def _stages_due(self, iteration: int, lambda_syn: float) -> tuple[bool, bool]:
        """Whether Stage I and Stage III run in this iteration; Stage III only once synthetic pairs weigh in."""
        stage_one = self.facts.trains_generator and iteration % self.generation.generator_update_interval == 0
        stage_three = self.facts.feedback and iteration % self.feedback.arch_update_interval == 0 and lambda_syn > 0
        return stage_one, stage_three

    def _log_steps_trained(self, engine: GenSegTrainer) -> None:
        # a time budget or early stopping may end a run before its planned steps: say how many it trained
        # (a resumed run's count includes the steps before the resume; skipped non-finite updates are counted)
        s = engine.state
        self.logger.info(
            f"mode {self.mode}: {s.iteration} segmenter steps trained (epoch {s.epoch}, {s.epoch_length} steps each)."
        )

    def _log_batch_makeup(self, image: torch.Tensor, masks: torch.Tensor | None) -> None:
        per_step = f"{image.shape[0]} real" + (f" + {masks.shape[0]} synthetic" if masks is not None else "")
        self.logger.info(f"mode {self.mode}: each segmenter step reads {per_step} images ({self.facts}).")

    # ------------------------------------------------------------------ Stage I
    def pix2pix_step(self, image: torch.Tensor, label: torch.Tensor, measure_update: bool = False) -> dict[str, float]:
        """Stage I: G(y) from the one-hot mask y, one :meth:`discriminator_step`, one :meth:`generator_step`.

        Returns ``loss_discriminator``, ``loss_generator`` and ``loss_generator_l1``.
        """
        self.generator.train()
        condition = one_hot_mask(label, self.num_classes).to(image.dtype)
        with self._autocast():
            fake = self.generator(condition)
        loss_d = self.discriminator_step(condition, image, fake)
        return {"loss_discriminator": loss_d, **self.generator_step(condition, image, fake, measure_update)}

    def discriminator_step(self, condition: torch.Tensor, image: torch.Tensor, fake: torch.Tensor) -> float:
        """One discriminator step, real pairs ``cat(condition, image)`` against fake ones; returns its loss.

        The fake images are detached: the generator is left alone.
        """
        self.discriminator.train()
        n = image.shape[0]
        with self._autocast():
            pairs = torch.cat([torch.cat([condition, image], 1), torch.cat([condition, fake.detach()], 1)])
            logits = self._patch_logits(pairs)
            loss = self.d_loss_function(logits[:n], logits[n:])
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = self._average([p.grad for p in self.discriminator.parameters() if p.grad is not None])
        if self._all_finite("discriminator", loss, *grads):
            self.discriminator_optimizer.step()
        return loss.item()

    def generator_step(
        self, condition: torch.Tensor, image: torch.Tensor, fake: torch.Tensor, measure_update: bool = False
    ) -> dict[str, float]:
        """One step on the generator weights W (never alpha): adversarial loss + ``lambda_l1`` x L1(fake, image).

        ``measure_update`` records the norm of the weight update, against which Stage III's feedback share is logged.
        """
        with self._autocast():
            loss_adv = self.g_loss_function(self._patch_logits(torch.cat([condition, fake], 1)))
            loss_l1 = (fake.float() - image.float()).abs().mean()
            loss = loss_adv + self.generation.lambda_l1 * loss_l1
        weights = self.generator.weight_parameters()
        self.generator_optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=weights)
        grads = self._average([w.grad for w in weights if w.grad is not None])
        if self._all_finite("generator", loss, *grads):
            before = [w.detach().clone() for w in weights] if measure_update else None
            self.generator_optimizer.step()
            if before is not None:
                moved = sum(((w.detach() - b) ** 2).sum() for w, b in zip(weights, before))
                self._last_pix2pix_update = float(torch.sqrt(moved))
        return {"loss_generator": loss.item(), "loss_generator_l1": loss_l1.item()}

    # ------------------------------------------------------------------ Stage II
    def synthesize(self, label: torch.Tensor, keep_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """New masks from the real ones and their synthetic images; on the generator's graph for Stage III."""
        with torch.no_grad():
            masks = self.mask_augment(label)  # type: ignore[misc]
        grad = torch.enable_grad() if keep_graph else torch.no_grad()
        with grad, self._autocast():
            self.generator.train()
            synthetic = self.generator(one_hot_mask(masks, self.num_classes))
        return masks, synthetic

    def segmenter_gradients(
        self,
        image: torch.Tensor,
        label: torch.Tensor,
        masks: torch.Tensor | None,
        synthetic: torch.Tensor | None,
        for_architecture: bool = False,
    ) -> tuple[list[torch.Tensor], dict[str, Any]]:
        """Stage II: gradient of L_tr = L(S(x), y) + lambda_syn * L(S(x~), m~) for the segmenter weights.

        The real and synthetic halves run as separate forward passes, so the exact hypergradient's
        second-order pass (``create_graph``) only ever traverses the synthetic half. The step itself,
        :meth:`segmenter_update`, comes after Stage III, which needs the weights before it.
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
        exact = for_architecture and self.feedback.hypergradient == "exact"
        grads = torch.autograd.grad(loss, params, create_graph=exact, retain_graph=for_architecture, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
        if logits.dim() > image.dim():  # a deep-supervised segmenter's stack: the full-resolution logits first
            logits = logits[:, 0]
        out = {Keys.PRED: logits.detach(), Keys.LOSS: loss.detach()}
        return grads, {**out, "loss_real": loss_real.item(), "loss_synthetic": loss_syn.item()}

    def segmenter_update(self, grads: Sequence[torch.Tensor]) -> bool:
        """Stage II's step: average ``grads`` over the ranks and apply them unless one is NaN/Inf; True if applied.

        Stage III, before it, unrolled this rank's own step from the weights before this update.
        """
        grads = self._average([g.detach() for g in grads])
        if not self._all_finite("segmenter", *grads):
            return False
        self._apply(self.optimizer, list(self.network.parameters()), grads)
        return True

    # ------------------------------------------------------------------ Stage III
    def architecture_step(
        self, masks: torch.Tensor, synthetic: torch.Tensor, grads: Sequence[torch.Tensor]
    ) -> dict[str, float]:
        """Stage III: step alpha (and, with a ``feedback_optimizer``, the weights) along the hypergradient."""
        arch = self.generator.arch_parameters()
        hyper, loss_val = self.architecture_hypergradient(masks, synthetic, grads)
        hyper = self._average(hyper)
        norm = torch.sqrt(sum((h.double() ** 2).sum() for h in hyper[: len(arch)]))
        out = {"loss_val": loss_val.item(), "hypergradient_norm": float(norm)}
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
        feedback = self.feedback

        def val_loss(params):
            with self._autocast():
                return self.loss_function(functional_call(self.network, params, (val_image,)), val_label)

        def synthetic_loss(params):
            with self._autocast():
                return lam * self.loss_function(functional_call(self.network, params, (synthetic,)), masks)

        targets = self.generator.arch_parameters()
        if self.feedback_optimizer is not None:
            targets = targets + self.generator.weight_parameters()
        if feedback.unroll == "optimizer":
            update = adam_update(self.optimizer, named, lr=feedback.unrolled_lr)
        else:
            update = sgd_update(self._unrolled_lr())
        return unrolled_hypergradient(
            val_loss,
            synthetic_loss,
            theta,
            dict(zip(named, grads)),
            targets,
            method=feedback.hypergradient,
            radius=feedback.hypergradient_radius,
            update=update,
        )

    # ------------------------------------------------------------------ warm-up
    def warmup_generator(self, iterations: int, check_interval: int = 25, patience: int = 4) -> int:
        """Stage I alone before training, until the generator's validation L1 stops improving.

        At most ``iterations`` steps; the validation L1 is checked every ``check_interval`` steps (and at the
        last), and ``patience`` checks without improvement end it early; the best weights are kept. A no-op
        (0) in baseline mode. Sets ``state.generator_warmup_steps``, fires ``GenSegEvents.WARMUP_COMPLETED``
        and returns the steps taken. :class:`monai_genseg.handlers.GeneratorWarmup` calls it on a fresh start.
        """
        if not self.facts.synthetic or iterations <= 0:
            return 0
        # the warm-up draws real batches from its own random state, so Stage II then reads the same real
        # batch stream in every mode (the baseline has no warm-up); so do the handlers of its event
        with _isolated_randomness(self.data_loader, self.state.device):
            steps = self._warmup_loop(iterations, check_interval, patience)
            self.fire_event(GenSegEvents.WARMUP_COMPLETED)
        return steps

    def _warmup_loop(self, iterations: int, check_interval: int, patience: int) -> int:
        best, best_state, stale, step = math.inf, None, 0, 0
        batches = self._cycle(self.data_loader)
        for step in range(1, iterations + 1):
            image, label = self._pair(next(batches))
            losses = self.pix2pix_step(image, label)
            if step % check_interval and step != iterations:
                continue
            val_l1 = self.generator_validation_l1() if self.val_data_loader is not None else losses["loss_generator_l1"]
            self.logger.info(f"generator warm-up {step}/{iterations}: val L1 {val_l1:.4f}")
            if val_l1 < best - 1e-4:
                best, best_state, stale = val_l1, copy.deepcopy(self.generator.state_dict()), 0
            else:
                stale += 1
                if stale >= patience:
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

    # ------------------------------------------------------------------ helpers
    def current_lambda_syn(self) -> float:
        """lambda_syn on its linear ramp from 0 over ``syn_rampup_iterations`` segmenter steps."""
        if not self.facts.synthetic:
            return 0.0
        lambda_syn, rampup = float(self.generation.lambda_syn), self.generation.syn_rampup_iterations
        if rampup <= 0:
            return lambda_syn
        return lambda_syn * min(1.0, self.state.iteration / rampup)

    def _all_finite(self, stage: str, *tensors: torch.Tensor) -> bool:
        """True if every tensor is finite; otherwise count and log a skipped ``stage`` update. One device sync
        for all of them: a sync per gradient tensor stalls a GPU step dozens of times."""
        if bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
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
        nets = (("segmenter", self.network), ("generator", self.generator), ("discriminator", self.discriminator))
        for name, net in nets:
            local = torch.stack([p.detach().double().sum() for p in net.parameters()])
            everyone = [torch.zeros_like(local) for _ in range(torch.distributed.get_world_size())]
            torch.distributed.all_gather(everyone, local)
            if any(not torch.allclose(e, everyone[0], rtol=1e-6, atol=1e-8) for e in everyone):
                raise RuntimeError(f"distributed training diverged: the {name} weights differ between ranks.")
        rank = torch.distributed.get_rank()
        self.logger.info(f"rank {rank}: replicas consistent (segmenter, generator, discriminator)")

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
        lr = self.feedback.unrolled_lr
        return float(lr if lr is not None else self.optimizer.param_groups[0]["lr"])

    def _autocast(self):
        kind = torch.device(self.state.device).type
        if self.amp and (kind == "cuda" or (kind == "cpu" and self.cpu_bf16)):
            return torch.autocast(kind, dtype=torch.bfloat16)
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
        return self._pair(batch)

    def _pair(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(image, label) of ``batch`` on the device, as plain tensors: a MetaTensor runs Python metadata code
        around every operation of the networks and losses, which costs a GPU step several times its kernels."""
        image, label = self.prepare_batch(batch, self.state.device, self.non_blocking, **self.to_kwargs)[:2]
        return convert_to_tensor(image, track_meta=False), convert_to_tensor(label, track_meta=False)

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
