"""The generator warm-up before GenSeg training, as a handler the bundle lists."""

from __future__ import annotations

from ignite.engine import Engine, Events


class GeneratorWarmup:
    """At ``Events.STARTED`` of a fresh run, train the generator alone (Stage I) before the segmenter starts.

    Calls ``engine.warmup_generator(iterations, check_interval, patience)`` of a
    :class:`monai_genseg.engines.GenSegTrainer`: at most ``iterations`` pix2pix steps, stopped early when
    the generator's validation L1 stops improving, keeping its best weights; it does nothing in baseline mode.
    A resumed run (``state.iteration > 0``) skips it: its generator was warmed up before the checkpoint.

    Handlers attach, and run at ``Events.STARTED``, in list order: list this one *after* the checkpoint
    loaders (``CheckpointLoader``, ``AtomicCheckpointSaver(resume=True)``) in the trainer's handlers, so that
    it sees the iteration count a resume restored. Attach it on every rank: the warm-up averages its
    gradients over the ranks.

    Args:
        iterations: most Stage-I-only steps before segmenter training; 0 turns the warm-up off.
        check_interval: warm-up steps between checks of the generator's validation L1.
        patience: checks without improvement that end the warm-up early (the best weights are kept).
    """

    def __init__(self, iterations: int, check_interval: int = 25, patience: int = 4) -> None:
        if check_interval < 1 or patience < 1:
            raise ValueError(f"check_interval and patience must be >= 1, got {check_interval} and {patience}.")
        self.iterations = iterations
        self.check_interval = check_interval
        self.patience = patience

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if engine.state.iteration == 0:
            engine.warmup_generator(self.iterations, self.check_interval, self.patience)  # type: ignore[attr-defined]
