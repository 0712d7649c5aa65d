"""The handlers a user attaches to a GenSegTrainer leave what they promise on disk and in memory."""

import numpy as np
from PIL import Image

from monai_genseg.handlers import GenotypeLogger, SyntheticGallery, SyntheticPairSaver


def test_gallery_pairs_and_genotype_history(trainer_factory, tmp_path):
    trainer = trainer_factory("end2end", iterations=4)
    gallery = SyntheticGallery(
        trainer.generator, num_classes=2, output_dir=tmp_path / "gallery", interval=2, max_rows=2
    )
    genotype = GenotypeLogger(trainer.generator, interval=2)
    for handler in (gallery, genotype, SyntheticPairSaver(tmp_path / "pairs", interval=None, max_pairs=1)):
        handler.attach(trainer)
    trainer.run()
    pictures = sorted(p.name for p in (tmp_path / "gallery").iterdir())
    assert pictures == ["gallery_iter000002.png", "gallery_iter000004.png"]
    picture = np.asarray(Image.open(tmp_path / "gallery" / pictures[-1]))
    assert picture.shape == (2 * 32, 3 * 32, 3)  # two rows of mask | synthetic | real, 32x32 each
    assert sorted(p.name for p in (tmp_path / "pairs").iterdir()) == [
        "iter000004_pair0_image.png",
        "iter000004_pair0_mask.png",
    ]
    assert [it for it, _ in genotype.history] == [2, 4]
    assert genotype.history[-1][1] == trainer.generator.genotype()


def test_handlers_given_to_the_constructor_skip_what_the_mode_never_trains(trainer_factory, tmp_path, caplog):
    import logging

    made = {"baseline": set(), "joint": {"gallery"}, "end2end": {"gallery", "genotype"}}
    for mode, drawn in made.items():
        # as the bundles do: given to the constructor, which attaches them before it returns
        gallery = SyntheticGallery(None, num_classes=2, output_dir=tmp_path / mode / "gallery", interval=1)
        genotype = GenotypeLogger(None, interval=1, log_dir=str(tmp_path / mode / "genotype"))
        trainer = trainer_factory(mode, iterations=2, train_handlers=[gallery, genotype])
        gallery.generator = genotype.generator = trainer.generator  # built inside the factory
        with caplog.at_level(logging.INFO):
            trainer.run()
        # only the feedback loop steps the architecture weights; joint trains the generator, so it is drawn
        assert len(genotype.history) == (2 if mode == "end2end" else 0)
        assert {p.name for p in (tmp_path / mode).glob("*")} == drawn
    assert list((tmp_path / "end2end" / "genotype").glob("events.out.tfevents.*"))  # the weights, for TensorBoard
    # the steps a run trained, which a time budget or early stopping may cut short, are logged at the end
    assert "mode joint: 2 segmenter steps trained (epoch 1, 2 steps each)." in caplog.text


def test_best_metric_survives_a_resume_so_model_pt_is_not_replaced_by_a_worse_model(tmp_path):
    import torch
    from monai.engines import SupervisedEvaluator

    from monai_genseg.handlers import AtomicCheckpointSaver, BestMetricState

    def evaluator(dice: float) -> SupervisedEvaluator:
        net = torch.nn.Conv2d(1, 2, 1)
        data = [{"image": torch.zeros(1, 1, 4, 4), "label": torch.zeros(1, 1, 4, 4)}]
        ev = SupervisedEvaluator(
            device="cpu", val_data_loader=data, network=net, decollate=False, key_val_metric={"dice": _Constant(dice)}
        )
        AtomicCheckpointSaver(
            tmp_path, {"model": net}, filename="model.pt", save_key_metric=True, overwrite=True
        ).attach(ev)
        return ev

    first = evaluator(0.8)
    first.run(global_epoch=1)  # as ValidationHandler runs it after the trainer's epoch 1
    state = BestMetricState(first).state_dict()
    assert state == {"best_metric": 0.8, "best_metric_epoch": 1}
    saved = (tmp_path / "model.pt").read_bytes()

    resumed = evaluator(0.5)  # a fresh process: worse validation after the resume
    BestMetricState(resumed).load_state_dict(state)
    resumed.run(global_epoch=2)
    assert resumed.state.best_metric == 0.8 and (tmp_path / "model.pt").read_bytes() == saved


class _Constant:
    """An ignite metric that always reads ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def attach(self, engine, name: str) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.__setitem__(name, self.value))


def test_case_metrics_report_cases_without_the_class_apart(tmp_path):
    """A normal scan (no lesion) has no Dice; it must neither count as 0 or 1 nor vanish: it is counted apart,
    with whether the model left it empty."""
    import json

    import torch
    from ignite.engine import Engine
    from monai.data import MetaTensor

    from monai_genseg.handlers import CaseMetricsWriter

    def onehot(mask):
        return torch.stack([1 - mask, mask]).float()

    lesion, nothing = torch.zeros(8, 8), torch.zeros(8, 8)
    lesion[2:5, 2:5] = 1
    spot = nothing.clone()
    spot[0, 0] = 1
    cases = [  # (name, reference, prediction, dice)
        ("a.png", lesion, lesion, 1.0),
        ("normal_1.png", nothing, nothing, float("nan")),
        ("normal_2.png", nothing, spot, float("nan")),
    ]

    def step(engine, i):
        name, label, pred, _ = cases[i]
        image = MetaTensor(torch.zeros(1, 1, 8, 8), meta={"filename_or_obj": [name]})
        engine.state.batch = {"image": image}
        engine.state.metric_details = {"val_mean_dice": torch.tensor([[c[3]] for c in cases[: i + 1]])}
        return [{"pred": onehot(pred), "label": onehot(label)}]

    engine = Engine(step)
    CaseMetricsWriter(tmp_path, class_names=["lesion"]).attach(engine)
    engine.run(range(3), max_epochs=1)
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["summary"]["val_mean_dice_lesion"] == {"mean": 1.0, "std": 0.0, "n": 1}
    assert result["summary"]["empty_reference_lesion"] == {"n": 2, "predicted_empty": 1}
    assert [r["reference_empty_lesion"] for r in result["cases"]] == [False, True, True]
