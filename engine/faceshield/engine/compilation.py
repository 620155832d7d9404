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


def eager_generator(generator: torch.nn.Module | Callable) -> torch.nn.Module | Callable:
    """The eager twin of a TorchScript StarGAN or translator (same weights); anything else unchanged."""
    from .models.translator import load_translator
    from .models.victims import Unconditional

    if isinstance(generator, Unconditional) and isinstance(generator.translator, torch.jit.ScriptModule):
        state = generator.translator.state_dict()
        device = next(iter(state.values())).device
        return Unconditional(load_translator(state).to(device))
    if not isinstance(generator, torch.jit.ScriptModule):
        return generator
    state = generator.state_dict()
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
