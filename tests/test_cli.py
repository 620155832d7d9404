"""`faceshield protect` end to end, and clear errors without tracebacks."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from faceshield.cli.main import main
from tests.helpers import CPU_PRECISION, tiny_generator


def test_protect_writes_a_png_and_prints_json(tmp_path, capsys, portrait):
    src = tmp_path / "face.jpg"
    Image.fromarray(portrait).save(src, quality=95)
    out = tmp_path / "out" / "protected.png"
    args = ["protect", str(src), "-o", str(out), "--method", "pgd", "--steps", "2", "--json", "--targets", "Male"]
    rc = main([*args, "--models", "demo", "--verdict", "disruption"])  # the demo set: StarGAN's "Male"
    assert rc in (0, 3)  # 3: written, not protected (a weak run on the toy)
    report = json.loads(capsys.readouterr().out)
    img = np.array(Image.open(out))
    assert img.shape == portrait.shape
    assert report["targets"][0]["target"] == "Male" and isinstance(report["models"]["trained"], bool)
    assert 20 < report["input"]["psnr"] < 60
    assert report["execution"] == {
        "device": "cpu",
        "precision": CPU_PRECISION,
        "compile": "none",
        "saliency_runtime": "onnxruntime",
    }


def test_execution_options_reach_the_engine(tmp_path, capsys, portrait):
    src = tmp_path / "face.png"
    Image.fromarray(portrait).save(src)
    rc = main(
        [
            "protect",
            str(src),
            "-o",
            str(tmp_path / "p.png"),
            "--method",
            "pgd",
            "--steps",
            "1",
            "--json",
            "--targets",
            "Male",
            "--models",
            "demo",
            "--precision",
            "bf16",
            "--saliency-runtime",
            "onnxruntime",
        ]
    )
    assert rc in (0, 3)
    assert json.loads(capsys.readouterr().out)["execution"]["precision"] == "bf16"
    with pytest.raises(SystemExit) as refused:
        main(["protect", str(src), "-o", str(tmp_path / "q.png"), "--compile", "warp-speed"])
    assert refused.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_protect_with_a_legacy_generator_checkpoint(tmp_path, capsys, portrait):
    """`--generator` takes the official 2018 file, which has no `num_batches_tracked` counters."""
    state = tiny_generator(conv_dim=8, repeat_num=2).state_dict()
    legacy = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert len(state) - len(legacy) == 9  # 3 + 2 x 2 blocks + 2 norms
    ckpt = tmp_path / "200000-G.ckpt"
    torch.save(legacy, ckpt, _use_new_zipfile_serialization=False)
    src, out = tmp_path / "face.png", tmp_path / "p.png"
    Image.fromarray(portrait).save(src)
    args = ["protect", str(src), "-o", str(out), "--generator", str(ckpt), "--resolution", "32"]
    rc = main([*args, "--method", "pgd", "--steps", "1", "--targets", "Male", "--json"])
    assert rc in (0, 3), capsys.readouterr().err  # 3: written, not protected
    assert json.loads(capsys.readouterr().out)["models"]["name"] == "200000-G.ckpt"
    assert np.array(Image.open(out)).shape == portrait.shape


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"no image here")
    assert main(["protect", str(bad), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "not a PNG or JPEG" in err and "Traceback" not in err
    assert main(["protect", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png")]) == 2
    assert main(["protect", str(bad), "-o", str(tmp_path / "o.png"), "--epsilon", "2"]) == 2
    assert "epsilon" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_protect_with_a_generator_reads_only_tracer_from_the_demo_set(tmp_path, capsys, portrait, monkeypatch):
    """`--generator CKPT` brings its own victim: the demo set's victims are never read."""
    from faceshield.engine.modelsets import load as modelset_load
    from faceshield.engine.modelsets import published

    def refuse(*args, **kwargs):
        raise AssertionError("a victim of the demo set (or vintagify) was loaded for --generator")

    monkeypatch.setattr(modelset_load, "load_victim", refuse)
    monkeypatch.setattr(published, "published_victim", refuse)
    ckpt = tmp_path / "200000-G.ckpt"
    torch.save(tiny_generator(conv_dim=8, repeat_num=2).state_dict(), ckpt)
    src, out = tmp_path / "face.png", tmp_path / "p.png"
    Image.fromarray(portrait).save(src)
    args = ["protect", str(src), "-o", str(out), "--generator", str(ckpt), "--resolution", "32", "--faces", "centre"]
    assert main([*args, "--steps", "1", "--targets", "Male", "--policy", "fixed", "--json"]) in (0, 3), (
        capsys.readouterr().err
    )
    report = json.loads(capsys.readouterr().out)
    assert report["execution"]["saliency_runtime"] == "onnxruntime"  # TRACER came from the demo set
    assert [v["name"] for v in report["victims"]] == ["stargan"]


def test_the_exit_status_tells_written_but_not_protected_from_protected(tmp_path, capsys):
    """0: protected; 3: the PNG is written but the verdict is "not protected" (a script can tell);
    2: bad input, nothing written."""
    from faceshield.cli.protect import EXIT_NOT_PROTECTED
    from tests.helpers import write_tiny_model_set

    models = write_tiny_model_set(tmp_path / "tiny")
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(grey)
    out = tmp_path / "o.png"
    base = ["protect", str(grey), "-o", str(out), "--models", str(models), "--faces", "centre", "--method", "pgd"]
    # No face for the recogniser to judge: identity not measured, so never protected.
    assert main([*base, "--steps", "2", "--policy", "fixed"]) == EXIT_NOT_PROTECTED == 3
    text = capsys.readouterr().out
    assert out.is_file() and "verdict: NOT protected: face 0: identity not measured" in text
    # The MSE rule on the same tiny victim, strong enough: protected, exit 0.
    assert main([*base, "--verdict", "disruption", "--steps", "10", "--epsilon", "0.5"]) == 0
    assert "verdict: protected (every edit disrupted)" in capsys.readouterr().out
    assert main(["protect", str(tmp_path / "missing.png"), "-o", str(out)]) == 2
