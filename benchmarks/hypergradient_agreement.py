"""How well the finite-difference hypergradient agrees with the exact one, by segmenter activation.

    python benchmarks/hypergradient_agreement.py

Prints the cosine similarity between the two forms on the step_cost problem (2D, 32^2), for
several finite-difference radii, in float64 and float32. This is what chose the default form.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys

import torch
from step_cost import build_trainer

ACTS = ("swish", "gelu", "prelu", "leakyrelu", "relu")
RADII = (1e-1, 1e-2, 1e-3, 1e-4)


def hypergradient(trainer, method: str, radius: float = 0.01) -> torch.Tensor:
    trainer.feedback = dataclasses.replace(trainer.feedback, hypergradient=method, hypergradient_radius=radius)
    torch.manual_seed(0)
    batch = trainer.data_loader[0]
    image, label = batch["image"].to(torch.get_default_dtype()), batch["label"]
    trainer.mask_augment.set_random_state(0)
    masks, synthetic = trainer.synthesize(label)
    grads, _ = trainer.segmenter_gradients(image, label, masks, synthetic, for_architecture=True)
    hyper, _ = trainer.architecture_hypergradient(masks, synthetic, grads)
    return torch.cat([h.flatten() for h in hyper])


def main() -> None:
    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}")
    print(f"cosine(finite difference, exact) for radius {', '.join(map(str, RADII))}")
    for dtype in (torch.float64, torch.float32):
        torch.set_default_dtype(dtype)
        for act in ACTS:
            trainer = build_trainer(2, 32, act=act, unrolled_lr=0.5)
            trainer.network.to(dtype), trainer.generator.to(dtype)
            with torch.no_grad():  # distinct logits, so the softmax weights are not all equal
                for i, a in enumerate(trainer.generator.arch_parameters()):
                    a.copy_(torch.linspace(-0.5, 0.5, a.numel()) * (i + 1))
            exact = hypergradient(trainer, "exact")
            fd = [hypergradient(trainer, "finite_difference", r) for r in RADII]
            cos = [torch.nn.functional.cosine_similarity(f, exact, 0).item() for f in fd]
            name = str(dtype).replace("torch.", "")
            print(f"  {name:<8} segmenter act {act:<10}" + "".join(f"{c:9.3f}" for c in cos))


if __name__ == "__main__":
    main()
