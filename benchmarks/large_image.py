"""Cost of protecting a 12 MP phone photo with the SSIM penalty computed over the whole image
versus only over the windows that can see the face box (same value and gradient; see
attack/objective.SSIMPenalty). Prints seconds for one noise step + 3 I-FGSM steps on this machine.

    python benchmarks/large_image.py
"""

import time

import torch

import faceshield.engine.attack.objective as objective
import faceshield.engine.attack.protect as protect
from faceshield.engine import AttackConfig, create_labels
from faceshield.engine.modelsets import load_model_set


def main() -> None:
    models = load_model_set("demo", with_saliency=False)
    p = protect.Protector.for_generator(models.generator, models.attributes, models.resolution)
    image = torch.rand(3, 3000, 4000) * 2 - 1
    labels = create_labels(torch.zeros(1, len(models.attributes)), models.attributes, ["Male"])
    config = AttackConfig.for_method("union-saliency", steps=3, noise_steps=1)
    mask, box = [torch.full((3000, 4000), 0.5)], [(1500, 800, 2700, 2000)]
    region = objective.SSIMPenalty
    for label, fn in (("whole image", lambda original, box: region(original, None)), ("face region", region)):
        objective.SSIMPenalty = fn  # what objective.gradients builds per group
        t = time.perf_counter()
        p.protect([image], labels, config, boxes=box, saliency_masks=mask, compute_outputs=False)
        print(f"SSIM over the {label}: {time.perf_counter() - t:.2f} s for 1 + 3 steps", flush=True)
    objective.SSIMPenalty = region


if __name__ == "__main__":
    main()
