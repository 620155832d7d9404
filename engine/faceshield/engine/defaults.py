"""One home for the engine's enumerations and defaults that several layers share.

The CLI, the service and the engine read these names rather than repeating literals; the
attack's own hyperparameters (the paper's) live beside `AttackConfig` in `config.py`.
"""

from __future__ import annotations

PRECISIONS = ("fp32", "tf32", "bf16")  # generator arithmetic; "auto" chooses per device
PRECISION_CHOICES = ("auto", *PRECISIONS)
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")  # torch.compile, opt-in
SALIENCY_RUNTIMES = ("auto", "onnxruntime", "torch")  # what runs TRACER
EMBEDDED_SEED = 20240521  # weights of the untrained fallback models (no demo set shipped)
# Resizing, everywhere an image or mask changes size: bilinear with half-pixel centres,
# antialiased only when shrinking (as PIL and OpenCV's area filters do; upsampling needs none).
RESIZE_MODE = "bilinear"
EOT_SAMPLES = 9  # transforms an EoT-Blur step averages over (Ruiz et al.'s nine blurs)
ROBUST_SAMPLES = 3  # transforms a robust-stage step averages over: JPEG, a down-up resize, the blur
VICTIM_KINDS: tuple[str, ...] = ("stargan", "translator", "styles")  # conditional, unconditional, style network
VERDICT_RULES = ("identity", "disruption")  # what "protected" means: see outcome.Verdict
TARGET_SEPARATOR = "/"  # "vintage/vintage", "stargan/Male": a target qualified by its victim
