"""`faceshield protect --figure PATH`: what the protection did, as a person checks it.

One PNG (matplotlib, the non-interactive Agg canvas): the face of the original and of the
protected photo, the perturbation enlarged, and per victim and edit what the victim makes of
the original (the clean edit) and of the protected photo (the deepfake a forger gets), each
captioned with the face recogniser's distance from the person (>= 0.6: fails to match) and the
output SSIM against the clean edit. The file holds the face: it is written only where asked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PERTURBATION_GAIN = 10  # the change, 10x, about mid-grey: at most 6 of 255 levels is invisible as is


def write_figure(path: Path, original: np.ndarray, outcome, edits: dict) -> None:
    """`edits`: (victim, target, face) -> the identity report's EditIdentity (or None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    left, top, right, bottom = outcome.boxes[0] if outcome.boxes else (0, 0, original.shape[1], original.shape[0])
    crop = (slice(top, bottom), slice(left, right))
    change = outcome.protected.astype(np.int16) - original.astype(np.int16)
    shown = np.clip(128 + PERTURBATION_GAIN * change, 0, 255).astype(np.uint8)
    outputs = [o for o in outcome.generator_outputs if o.face == 0]
    cols = max(3, len(outputs))
    fig, axes = plt.subplots(3, cols, figsize=(2.2 * cols, 7.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    psnr = outcome.input.psnr
    panels = [
        (original[crop], "original"),
        (outcome.protected[crop], f"protected (PSNR {psnr:.1f} dB)"),
        (shown[crop], f"change x{PERTURBATION_GAIN} (max {int(np.abs(change).max())}/255)"),
    ]
    kept = outcome.verdict.identity.faces[0] if outcome.verdict.identity is not None else None
    if kept is not None and kept.distance is not None:
        panels[1] = (panels[1][0], panels[1][1] + f"\nvs person {kept.distance:.2f}")
    for ax, (img, title) in zip(axes[0], panels, strict=False):
        ax.imshow(img)
        ax.set_title(title, fontsize=8)
    ssim = {(t.victim, t.target, t.face): t.output_ssim for t in outcome.targets}
    for j, o in enumerate(outputs):
        e = edits.get((o.victim, o.target, o.face))
        clean = "" if e is None or e.clean is None else f"\nvs person {e.clean:.2f}"
        axes[1, j].imshow(o.original)
        axes[1, j].set_title(f"{o.victim}/{o.target}: clean edit{clean}", fontsize=8)
        fake = "" if e is None or e.protected is None else f"\nvs person {e.protected:.2f} ({e.state})"
        axes[2, j].imshow(o.protected)
        axes[2, j].set_title(
            f"of the protected photo{fake}\nSSIM {ssim.get((o.victim, o.target, o.face), 1):.2f}", fontsize=8
        )
    verdict = "protected" if outcome.verdict.protected else "NOT protected"
    fig.suptitle(f"FaceShield: {verdict} (distance >= 0.6: the deepfake fails a face check as the person)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
