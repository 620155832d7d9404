"""What identifies an evaluation run, so that a resumed run never mixes in numbers of another:
the models (hashes of every victim and the saliency model), each image's seed, the targets."""

from __future__ import annotations

import hashlib

import torch

from ..models.victims import qualified
from ..pipeline import FaceShieldEngine


def default_targets(engine: FaceShieldEngine) -> list[str]:
    """Every edit of the model set: bare names for one victim (as the paper names them),
    "victim/target" where there are several."""
    victims = engine.models.victims
    if len(victims) == 1:
        return list(victims[0].targets)
    return [qualified(v.name, t) for v in victims for t in v.targets]


def sample_seed(base: int, sample_id: str) -> int:
    """Each image's own random start, independent of its chunk and of the other images."""
    digest = hashlib.sha256(f"{base}/{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def state_hash(module) -> str | None:
    """SHA-256 over a module's state dict (names, shapes, dtypes, values); None if it has none."""
    state = getattr(module, "state_dict", None)
    if not callable(state):
        return None
    h = hashlib.sha256()
    for name, tensor in sorted(state().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def model_fingerprint(engine: FaceShieldEngine) -> dict:
    m = engine.models
    hashes = dict(m.hashes)
    if len(m.victims) == 1:
        hashes.setdefault("generator", state_hash(m.generator) or "unhashed")
    else:
        for v in m.victims:
            hashes.setdefault(f"victim:{v.name}", v.sha256 or state_hash(v.generator) or "unhashed")
    if m.saliency is not None:
        hashes.setdefault("saliency", state_hash(m.saliency) or m.saliency_name)
    return {
        "name": m.name,
        "version": m.version,
        "trained": m.trained,
        "resolution": m.resolution,
        "attributes": list(m.attributes),
        "victims": [[v.name, v.kind, v.resolution] for v in m.victims],
        "saliency": m.saliency_name if m.saliency is not None else "none",
        "hashes": hashes,
    }
