"""The handlers a user attaches to a GenSegTrainer leave what they promise on disk and in memory."""

import numpy as np
from PIL import Image

from monai_genseg.handlers import GenotypeLogger, SyntheticGallery, SyntheticPairSaver


def test_gallery_pairs_and_genotype_history(trainer_factory, tmp_path):
    trainer = trainer_factory("end2end", iterations=4)
    gallery = SyntheticGallery(trainer.generator, num_classes=2, output_dir=tmp_path / "gallery", interval=2, max_rows=2)
    genotype = GenotypeLogger(trainer.generator, interval=2)
    for handler in (gallery, genotype, SyntheticPairSaver(tmp_path / "pairs", interval=None, max_pairs=1)):
        handler.attach(trainer)
    trainer.run()
    pictures = sorted(p.name for p in (tmp_path / "gallery").iterdir())
    assert pictures == ["gallery_iter000002.png", "gallery_iter000004.png"]
    picture = np.asarray(Image.open(tmp_path / "gallery" / pictures[-1]))
    assert picture.shape == (2 * 32, 3 * 32, 3)  # two rows of mask | synthetic | real, 32x32 each
    assert sorted(p.name for p in (tmp_path / "pairs").iterdir()) == ["iter000004_pair0_image.png", "iter000004_pair0_mask.png"]
    assert [it for it, _ in genotype.history] == [2, 4]
    assert genotype.history[-1][1] == trainer.generator.genotype()
