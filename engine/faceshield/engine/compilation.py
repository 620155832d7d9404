"""torch.compile for the generator, opt-in per engine (`faceshield serve --compile MODE`).

The served artifact stays TorchScript (portable, no compiler needed to load it). Compiling needs
an eager module, so a TorchScript StarGAN's weights are loaded into the engine's own `Generator`
first; Inductor then fuses the normalizations and activations around the convolutions (the
issue's H100 figures: bf16 generator step 3,100 -> 4,100 image-steps/s at batch 64).
"reduce-overhead" adds CUDA graphs: one graph per batch shape, worth it where batches repeat.
Off by default: the first call of each new batch shape pays the compilation (tens of seconds),
which a server pays at warm-up and a one-shot CLI call would pay every time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .defaults import COMPILE_MODES
from .errors import InvalidInputError
from .models.stargan import Generator, infer_architecture

STYLE_EPS = 1e-5  # the norm's eps of the style networks FaceShield reads (multistyle26: 1e-5 in float32)
TWIN_TOLERANCE = 1e-4  # largest difference allowed between a style twin and its TorchScript artifact


def eager_generator(generator: torch.nn.Module | Callable) -> torch.nn.Module | Callable:
    """The eager twin of a TorchScript StarGAN, translator or style network (same weights);
    anything else unchanged."""
    from .models.translator import load_translator
    from .models.victims import Unconditional

    if isinstance(generator, Unconditional) and isinstance(generator.translator, torch.jit.ScriptModule):
        state = generator.translator.state_dict()
        device = next(iter(state.values())).device
        return Unconditional(load_translator(state).to(device))
    if not isinstance(generator, torch.jit.ScriptModule):
        return generator
    state = generator.state_dict()
    if "network.contract.0.w" in state:
        return _style_twin(generator, state)
    twin = Generator(**infer_architecture(state))
    twin.load_state_dict(state, strict=True)
    device = next(iter(state.values())).device
    return twin.to(device).eval().requires_grad_(False)


def compile_generator(generator: torch.nn.Module | Callable, mode: str) -> torch.nn.Module | Callable:
    """`generator` under torch.compile in `mode` (one of COMPILE_MODES; "none" returns it as is)."""
    if mode not in COMPILE_MODES:
        raise InvalidInputError("compile", f"unknown compile mode {mode!r}; choose {', '.join(COMPILE_MODES)}")
    if mode == "none":
        return generator
    return torch.compile(eager_generator(generator), mode=None if mode == "default" else mode)


def _style_twin(scripted: torch.jit.ScriptModule, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A TorchScript `StyleVictim`'s eager twin. Its eps is a constant of the trace, not a weight:
    the twin takes `STYLE_EPS` and is checked against the artifact on a small input, so a network
    traced with another eps is refused rather than compiled wrong."""
    from .errors import ModelLoadError
    from .models.styles import StyleVictim, infer_style_network

    network = infer_style_network(state, eps=STYLE_EPS)
    twin = StyleVictim(network)
    twin.load_state_dict(state, strict=True)
    device = next(iter(state.values())).device
    twin = twin.to(device).eval().requires_grad_(False)
    side = 4 * network.multiple
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(device) * 2 - 1
    c = torch.zeros(1, network.num_styles, device=device)
    c[0, 0] = 1
    with torch.no_grad():
        worst = float((twin(x, c) - scripted(x, c)).abs().max())
    if not worst <= TWIN_TOLERANCE:
        raise ModelLoadError(
            f"the style network's eager twin differs from its artifact by {worst:.1e}; not compiling it"
        )
    return twin
