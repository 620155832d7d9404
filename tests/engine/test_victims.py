"""Several victims in one model set: one protection disrupts all of them; target selection;
model sets of translators; and the bad inputs a set of victims can hold."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceshield.engine import ENSURE, AttackConfig, FaceShieldEngine, ModelSet, ProtectRequest, Victim
from faceshield.engine.errors import InvalidInputError, ModelLoadError
from faceshield.engine.models.torchscript import quiet_jit
from faceshield.engine.models.translator import TranslatorSpec, build_translator
from faceshield.engine.models.victims import Unconditional, select_targets
from faceshield.engine.modelsets import (
    DeclaredTorchScript,
    TranslatorCheckpoint,
    import_official,
    load_model_set,
    read_manifest,
)
from tests.helpers import ATTRS, tiny_generator

R = 32


def translator(seed: int, ngf: int = 4, blocks: int = 1) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_translator(TranslatorSpec("resnet", ngf=ngf, blocks=blocks, norm="instance-affine"))
        for p in model.parameters():
            p.data.add_(torch.randn_like(p) * 0.3)  # a sensitive victim: small input changes move it
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def victims() -> list[Victim]:
    return [
        Victim("stargan", "stargan", tiny_generator(conv_dim=8, repeat_num=2), R, list(ATTRS)),
        Victim("sepia", "translator", Unconditional(translator(1)), R),
        Victim("sketch", "translator", Unconditional(translator(2)), 48),  # its own resolution
    ]


def image(seed: int = 0, size: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, (8, 8, 3)).astype(np.uint8)
    from PIL import Image

    return np.asarray(Image.fromarray(base).resize((size, size), Image.BILINEAR))


def test_one_protection_disrupts_every_victim_that_alone_would_be(victims):
    """Under the verified policy: its rounds drop the victims already disrupted from J, so the
    steps go to the ones left (with one sign step for all, the most sensitive victim's gradient
    would otherwise decide the direction, and the paper's fixed schedule leaves StarGAN intact
    here)."""
    config = AttackConfig.for_method("pgd", steps=10, seed=3)
    img = image()
    alone = {}
    for v in victims:
        engine = FaceShieldEngine(ModelSet("one", "1", victims=[v]))
        out = engine.protect([ProtectRequest(img, seed=3)], config)[0]
        alone[v.name] = {t.target: t.success for t in out.targets}
    assert all(all(flags.values()) for flags in alone.values()), alone  # each alone is disrupted
    joint = FaceShieldEngine(ModelSet("all", "1", victims=victims)).protect(
        [ProtectRequest(img, seed=3)], config, policy=ENSURE
    )[0]
    by_victim = {}
    for t in joint.targets:
        by_victim.setdefault(t.victim, {})[t.target] = t.success
    assert set(by_victim) == {"stargan", "sepia", "sketch"}
    assert by_victim == alone, "one perturbation must disrupt every victim that alone is disrupted"
    assert joint.verdict.protected and joint.verdict.not_disrupted == ()
    assert np.abs(joint.protected.astype(int) - img.astype(int)).max() <= int(0.05 * 127.5)


def test_targets_are_selected_by_name_or_by_victim(victims):
    assert select_targets(victims, None) == {"stargan": ATTRS, "sepia": ["sepia"], "sketch": ["sketch"]}
    assert select_targets(victims, ["Male", "sketch"]) == {"stargan": ["Male"], "sketch": ["sketch"]}
    assert select_targets(victims, ["sepia/sepia"]) == {"sepia": ["sepia"]}
    for bad in (["vintage"], ["sepia/Male"], ["Male", "stargan/Male"]):
        with pytest.raises(InvalidInputError) as err:
            select_targets(victims, bad)
        assert err.value.field == "targets"
    engine = FaceShieldEngine(ModelSet("all", "1", victims=victims))
    out = engine.protect([ProtectRequest(image(), targets=["sketch"])], AttackConfig.for_method("pgd", steps=1))[0]
    assert [(t.victim, t.target) for t in out.targets] == [("sketch", "sketch")]


def test_model_set_names_each_victim_once():
    g = tiny_generator()
    with pytest.raises(InvalidInputError, match="named twice: a"):
        ModelSet(
            "x", "1", victims=[Victim("a", "stargan", g, R, list(ATTRS)), Victim("a", "stargan", g, R, list(ATTRS))]
        )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("victims")
    torch.save(tiny_generator(conv_dim=8, repeat_num=2).state_dict(), d / "200000-G.ckpt")
    torch.save(translator(1).state_dict(), d / "sepia.pth")
    torch.save(translator(2).state_dict(), d / "sketch.pth")
    return d


def test_import_several_victims_with_their_resolutions_and_load_them(checkpoints, tmp_path):
    path = import_official(
        name="trio",
        generator_checkpoint=checkpoints / "200000-G.ckpt",
        resolution=R,
        translators=[
            TranslatorCheckpoint("sepia", checkpoints / "sepia.pth", R),
            TranslatorCheckpoint("sketch", checkpoints / "sketch.pth", 48),
        ],
        dest=tmp_path / "trio",
    )
    m = read_manifest(path)
    assert [(v.name, v.kind, v.resolution) for v in m.victims] == [
        ("stargan", "stargan", R),
        ("sepia", "translator", R),
        ("sketch", "translator", 48),
    ]
    assert m.victims[1].parameters["architecture"] == "resnet" and m.victims[1].parameters["blocks"] == 1
    models = load_model_set(path)
    assert models.targets == [*ATTRS, "sepia", "sketch"] and models.attributes == ATTRS
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    torch.testing.assert_close(models.victims[2].generator(x, torch.zeros(2, 0)), translator(2)(x), atol=1e-5, rtol=0)
    translators_only = import_official(
        name="pair", translators=[TranslatorCheckpoint("sepia", checkpoints / "sepia.pth", R)], dest=tmp_path / "p"
    )
    assert load_model_set(translators_only).attributes == []


def test_bad_victims_are_clear_errors_and_write_nothing(checkpoints, tmp_path):
    dest = tmp_path / "sets" / "bad"
    with pytest.raises(InvalidInputError, match="multiple of 4"):
        import_official(name="bad", translators=[TranslatorCheckpoint("s", checkpoints / "sepia.pth", 30)], dest=dest)
    with pytest.raises(InvalidInputError, match="named twice: s"):
        import_official(
            name="bad",
            translators=[
                TranslatorCheckpoint("s", checkpoints / "sepia.pth", R),
                TranslatorCheckpoint("s", checkpoints / "sketch.pth", R),
            ],
            dest=dest,
        )
    with pytest.raises(Exception, match="neither the ResNet layout"):
        import_official(
            name="bad", translators=[TranslatorCheckpoint("g", checkpoints / "200000-G.ckpt", R)], dest=dest
        )
    with quiet_jit():
        wrong = torch.jit.trace(torch.nn.Conv2d(3, 1, 3, padding=1).eval(), torch.zeros(1, 3, R, R))
        torch.jit.save(wrong, str(tmp_path / "one-channel.pt"))
        ok = torch.jit.trace(torch.nn.Conv2d(3, 3, 3, padding=1).eval(), torch.zeros(1, 3, R, R))
        torch.jit.save(ok, str(tmp_path / "rgb.pt"))
    with pytest.raises(InvalidInputError, match="returns") as err:
        import_official(
            name="bad", torchscripts=[DeclaredTorchScript("c", tmp_path / "one-channel.pt", "translator", R)], dest=dest
        )
    assert err.value.field == "torchscript"
    with pytest.raises(InvalidInputError, match=r"G\(x, c\)"):
        import_official(
            name="bad", torchscripts=[DeclaredTorchScript("c", tmp_path / "rgb.pt", "stargan", R, ATTRS)], dest=dest
        )
    assert not dest.exists()
    assert not dest.parent.exists() or not list(dest.parent.glob(".*"))  # no half-written set left


def test_declared_torchscript_translator_is_a_victim(tmp_path):
    with quiet_jit():
        scripted = torch.jit.trace(translator(3), torch.zeros(1, 3, R, R), check_trace=False)
        torch.jit.save(scripted, str(tmp_path / "mine.pt"))
    path = import_official(
        name="mine",
        torchscripts=[DeclaredTorchScript("mine", tmp_path / "mine.pt", "translator", R)],
        dest=tmp_path / "set",
    )
    models = load_model_set(path)
    assert models.victims[0].kind == "translator" and models.targets == ["mine"]


def test_a_manifest_naming_a_victim_twice_is_refused(checkpoints, tmp_path):
    path = import_official(
        name="pair", translators=[TranslatorCheckpoint("sepia", checkpoints / "sepia.pth", R)], dest=tmp_path / "pair"
    )
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["victims"].append(dict(manifest["victims"][0]))
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="named twice: sepia"):
        load_model_set(path)


class _Grey(torch.nn.Module):
    """A victim that sees only the channel mean: disrupted when the perturbation moves all three
    channels one way, undone when another victim pushes red and green apart."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * x.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)


class _RedGreen(torch.nn.Module):
    """A victim no perturbation within epsilon disrupts (its gain is too small); where all three
    channels moved one way, its gradient pulls red and green apart."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x[:, :1] - 2 * x[:, 1:2]).expand(-1, 3, -1, -1)


def test_ensure_never_delivers_less_than_it_measured():
    """The verified policy drops disrupted victims from J; the steps that chase the one left may
    undo them. What it delivers must disrupt at least what the best measured iterate did, so
    never less than the fixed schedule it starts with."""
    grey = Victim("grey", "translator", Unconditional(_Grey()), R)
    victims = [grey, Victim("redgreen", "translator", Unconditional(_RedGreen()), R)]
    engine = FaceShieldEngine(ModelSet("pair", "1", victims=victims))
    config = AttackConfig.for_method("pgd", steps=10, seed=3)
    img = image(1)
    fixed = engine.protect([ProtectRequest(img, seed=3)], config)[0]
    ensured = engine.protect([ProtectRequest(img, seed=3)], config, policy=ENSURE)[0]
    hit = lambda out: {t.victim for t in out.targets if t.success}  # noqa: E731
    assert hit(fixed) == {"grey"}  # the fixed schedule disrupts the sensitive victim only
    assert hit(ensured) >= hit(fixed), (hit(ensured), ensured.verdict)
    assert not ensured.verdict.protected and ensured.verdict.not_disrupted == ("redgreen/redgreen",)
    assert 10 < ensured.verdict.steps < 60  # it chased redgreen until the stall rule stopped it
