"""Log the generator architecture the feedback loop is choosing, as it changes."""

from __future__ import annotations

import logging

import torch
from ignite.engine import Engine, Events


class GenotypeLogger:
    """Every ``interval`` iterations, log the genotype and the softmax weights of each searchable block.

    The genotype history (iteration, genotype) is kept in ``self.history``, and each block's weights go
    to TensorBoard when a ``summary_writer`` is given.

    Args:
        generator: the :class:`MaskToImageGenerator` being searched.
        interval: iterations between records.
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter``.
        logger_name: name of the logger to write to.
    """

    def __init__(self, generator, interval: int = 50, summary_writer=None, logger_name: str = "GenotypeLogger") -> None:
        self.generator = generator
        self.interval = interval
        self.summary_writer = summary_writer
        self.logger = logging.getLogger(logger_name)
        self.history: list[tuple[int, list[str]]] = []

    def attach(self, engine: Engine) -> None:
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
