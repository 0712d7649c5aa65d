"""Log the generator architecture the feedback loop is choosing, as it changes."""

from __future__ import annotations

import logging

import torch
from ignite.engine import Engine, Events


class GenotypeLogger:
    """Every ``interval`` iterations, log the genotype and the softmax weights of each searchable block.

    The genotype history (iteration, genotype) is kept in ``self.history``, and each block's weights go
    to TensorBoard when a ``summary_writer`` or a ``log_dir`` is given. Nothing is logged, and no
    ``log_dir`` made, in a mode without the feedback loop, which alone steps the architecture weights:
    there the genotype does not change.

    Args:
        generator: the :class:`MaskToImageGenerator` being searched.
        interval: iterations between records.
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter``.
        logger_name: name of the logger to write to.
        log_dir: without a ``summary_writer``, a folder for one, made when the handler attaches to a
            searching engine.
    """

    def __init__(
        self,
        generator,
        interval: int = 50,
        summary_writer=None,
        logger_name: str = "GenotypeLogger",
        log_dir: str | None = None,
    ) -> None:
        self.generator = generator
        self.interval = interval
        self.summary_writer = summary_writer
        self.log_dir = log_dir
        self.logger = logging.getLogger(logger_name)
        self.history: list[tuple[int, list[str]]] = []

    def attach(self, engine: Engine) -> None:
        facts = getattr(engine, "facts", None)  # a GenSegTrainer's mode
        if facts is not None and not facts.feedback:
            return
        if self.summary_writer is None and self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.summary_writer = SummaryWriter(self.log_dir)
            engine.add_event_handler(Events.COMPLETED, lambda _: self.summary_writer.flush())  # its last points
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self)
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        it = engine.state.iteration
        if self.history and self.history[-1][0] == it:
            return
        genotype = self.generator.genotype()
        changed = not self.history or self.history[-1][1] != genotype
        self.history.append((it, genotype))
        blocks = [*self.generator.down, *self.generator.up]
        weights = [torch.softmax(b.alpha.detach().float(), 0).tolist() for b in blocks]
        text = ", ".join(f"{g}({max(w):.2f})" for g, w in zip(genotype, weights))
        self.logger.info(f"iteration {it} genotype{' (changed)' if changed else ''}: {text}")
        if self.summary_writer is not None:
            for name, block, w in zip(genotype, blocks, weights):
                tag = name.split(":")[0]
                self.summary_writer.add_scalars(f"genotype/{tag}", dict(zip(block.names, w)), it)
