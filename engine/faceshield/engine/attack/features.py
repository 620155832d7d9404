"""Feature-level objective (issue 21's "raise transfer"; off by default): besides the edit itself,
push the victim's own encoder activations away from those of the clean photo.

    J_feat(x) = w_feat * mean_t |phi_g(x_g, c_t) - phi_g(I_g, c_t)|^2 / mean |phi_g(I_g, c_t)|^2

phi_g is the output of victim g's contracting path (the convolutions before its residual blocks):
for CycleGAN's ResNet generator the 7x7 conv and both stride-2 convs with their norms and ReLUs,
for the conditional style network its three contracting `StyleConv`s with their ReLUs. The ratio
makes the term scale-free, so one weight serves victims whose activations differ by orders of
magnitude. The idea is that of NRDM / FDA for classifiers and of LEAT for face editors: early
convolutional features are what generators trained on natural images share, so a perturbation
that scrambles them in the victims at hand may scramble them in one the attack never saw.

phi sees the step's crop as it is, not the robust stage's JPEG / resize / blur of it: the term
is about the perturbation itself, and one pass keeps its cost down.

Victims whose layout is not one of these (StarGAN, U-Net translators, evaluation-only victims)
get no feature term: `encoder_of` returns None and the rest of J is unchanged. The term costs one
extra pass of the contracting path per step (with gradient) and one without (the clean
activations): some 10-15 % of a step's multiply-adds for the default victims (on 25 CelebA
faces the protection took 25.1 s per face with it at weight 1 against 23.2 s without, at 23
steps both). It never enters the early-stop hint or any check: those measure edits, not
activations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..models.translator import RESNET_CONTRACT_LAYERS

Encoder = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (N, 3, R, R) in [-1, 1], (N, c) -> (N, C, r, r)


def _name(module) -> str:
    """The module's class name, also for a TorchScript module (which keeps it as `original_name`)."""
    return getattr(module, "original_name", type(module).__name__)


def _callable(layers) -> bool:
    """Whether these layers can be run one by one: eager modules and loaded TorchScript can; the
    submodules of a trace never saved and loaded again cannot (torch refuses to call them). The
    engine's victims are loaded artifacts."""
    return all(
        not isinstance(m, torch.jit.ScriptModule) or isinstance(m, torch.jit.RecursiveScriptModule) for m in layers
    )


def encoder_of(generator) -> Encoder | None:
    """phi for a victim's G(x, c), eager or loaded TorchScript, or None where its layout is not
    known (or its layers cannot be run one by one)."""
    translator = getattr(generator, "translator", None)
    if translator is not None and _name(translator) == "ResnetTranslator":
        layers = list(translator.model.children())[:RESNET_CONTRACT_LAYERS]
        if not _callable(layers):
            return None

        def translator_features(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # noqa: ARG001 (no labels)
            for layer in layers:
                x = layer(x)
            return x

        return translator_features
    network = getattr(generator, "network", None)
    if network is not None and _name(network) == "StyleNetwork":
        contract = list(network.contract.children())
        if not _callable(contract):
            return None

        def style_features(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            h = (x + 1) / 2  # the style network's input space (models.styles.StyleVictim)
            for layer in contract:
                h = F.relu(layer(h, c))
            return h

        return style_features
    return None


class FeatureTerm:
    """The feature term of one `protect` call, for the victims whose encoder is known."""

    def __init__(self, victims, weight: float, autocast_dtype: torch.dtype | None = None):
        self.weight = weight
        self.autocast_dtype = autocast_dtype
        self.encoders = {v.name: e for v in victims if (e := encoder_of(v.generator)) is not None}

    def __contains__(self, victim_name: str) -> bool:
        return victim_name in self.encoders

    def _encode(self, encode: Encoder, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return encode(x, c)
        with torch.autocast(x.device.type, dtype=self.autocast_dtype):
            return encode(x, c).float()

    def terms(self, victim_name: str, inputs: torch.Tensor, clean: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(V,) w_feat times the relative distortion of phi, averaged over the view's targets:
        inputs and clean (V, 3, R, R), labels (V, T, c). A translator's phi ignores the labels,
        so it runs once per view."""
        encode = self.encoders[victim_name]
        v, t = labels.shape[:2]
        if labels.shape[-1] == 0:  # no conditioning: one pass per view stands for every target
            t = 1
            labels = labels[:, :1]
        per_target = lambda a: a[:, None].expand(v, t, *a.shape[1:]).reshape(v * t, *a.shape[1:])  # noqa: E731
        c = labels.reshape(v * t, labels.shape[-1])
        with torch.no_grad():
            ref = self._encode(encode, per_target(clean), c)
        phi = self._encode(encode, per_target(inputs), c)
        scale = ref.pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
        ratio = (phi - ref).pow(2).mean(dim=(1, 2, 3)) / scale
        return self.weight * ratio.reshape(v, t).mean(dim=1)
