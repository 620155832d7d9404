"""Every shell command in the README's "Quick start" and "Using it" sections, and in the docs
section the other commands moved to (docs/command-line.md, "More commands"), runs, as a new user
would type it, and does what the text beside it says.

Commands are read from those pages themselves, so an example that is edited or added is run too; a
command this file has no check for fails the test rather than passing unexamined, and so does a
check no command uses any more (an example that went missing). Paths the examples invent
(face.jpg, photos/, todo.txt, 200000-G.ckpt) are created in a scratch folder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import tiny_generator

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def commands(title: str, page: str = "README.md") -> list[tuple[str, str]]:
    """(command, its comment) for every line of the sh blocks of the page's section."""
    text = section((ROOT / page).read_text(), title)
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.strip():
                cmd, _, comment = line.partition("#")
                out.append((cmd.strip(), comment.strip()))
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    (d / "assets").mkdir()
    shutil.copy(ROOT / "assets" / "astronaut.png", d / "assets" / "astronaut.png")
    face = Image.open(ROOT / "assets" / "astronaut.png").convert("RGB")
    face.save(d / "face.jpg", quality=95)
    face.save(d / "more.jpg", quality=95)
    (d / "photos" / "trip").mkdir(parents=True)
    face.resize((256, 256)).save(d / "photos" / "a.png")
    face.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((256, 256)).save(d / "photos" / "trip" / "b.png")
    face.resize((200, 200)).save(d / "listed.png")
    (d / "todo.txt").write_text("listed.png\n")
    torch.save(tiny_generator(conv_dim=8, repeat_num=2).state_dict(), d / "200000-G.ckpt")
    return d


def run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "faceshield.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def report(result: subprocess.CompletedProcess, allowed: tuple[int, ...] = (0,)) -> str:
    """stdout of a run that ended with one of `allowed` (0 protected; 3 written, not protected)."""
    assert result.returncode in allowed, (result.returncode, result.stderr[-2000:])
    return result.stdout


def test_quick_start(scratch):
    quick = commands("Quick start")
    assert [c for c, _ in quick] == ["make demo", "make test-fast", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    demo = re.search(r"^demo: .*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    steps = [line.strip().replace("$(BIN)/faceshield ", "") for line in demo.splitlines() if "faceshield" in line]
    assert steps == ["models prepare", "protect assets/astronaut.png -o out/astronaut-protected.png"]
    prepared = report(run(shlex.split(steps[0]), scratch))
    assert "victim 'vintage'" in prepared and "victim 'styles'" in prepared and "MIT license" in prepared
    out = report(run(shlex.split(steps[1]), scratch))
    # What the Quick start says make demo prints: the face found, both real victims, every
    # deepfake failing a face check while the photo still passes: protected.
    assert "head regions of the 1 face(s) the detector found" in out
    assert "victim vintage" in out and "victim styles" in out and "victim stargan" not in out
    assert "(still the person)" in out and "STILL PASSES" not in out
    assert "verdict: protected (every deepfake fails to match the person; the photo still does)" in out, out
    readme = (ROOT / "README.md").read_text()
    assert "verdict: protected (every deepfake fails to match the person; the photo still does)" in readme
    assert Image.open(scratch / "out" / "astronaut-protected.png").size == (512, 512)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^test-fast:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


# The sections whose commands test_using_it runs: the README's "Using it", then the docs section
# that holds the commands moved out of it.
USING_IT = [("README.md", "Using it"), ("docs/command-line.md", "More commands")]


# A check for every command of USING_IT, keyed by a part of the command that names it.
def _every_victim(out: str) -> None:
    assert "victim styles" in out and "victim vintage" in out and "verdict:" in out and "deepfake" in out


def _one_victim(out: str) -> None:
    assert "victim vintage" in out and "victim styles" not in out and "verdict:" in out


def _figure(out: str, cwd: Path) -> None:
    assert "verdict:" in out
    assert Image.open(cwd / "out" / "what-it-did.png").size[0] > 600  # a picture of every edit


def _fixed(out: str) -> None:
    assert "union-saliency, policy fixed: 10 steps;" in out and "rounds" not in out.splitlines()[0]
    assert "deepfake" not in out  # the MSE rule alone


def _pgd_json(out: str) -> None:
    r = json.loads(out)
    assert r["method"] == "pgd" and r["policy"]["kind"] == "ensure" and r["verdict_rule"] == "identity"
    [vintage] = r["victims"]
    assert vintage["name"] == "vintage" and vintage["targets"][0]["success"]  # PGD does disrupt by the MSE rule


def _robust(out: str) -> None:
    assert "after jpeg75:" in out and "after downscale2:" in out and "union-saliency-robust" in out


def _box(out: str) -> None:
    assert "face box: 120,0,330,210" in out and "detector" not in out


def _folder(cwd: Path, names: tuple[str, ...] = ("a.png", "trip/b.png", "more.png", "listed.png")) -> None:
    for rel in names:
        assert (cwd / "protected" / rel).is_file() or any((cwd / "protected").rglob(Path(rel).name)), rel


def _generator(out: str) -> None:
    assert "victim stargan" in out and "victim vintage" not in out


def _models_list(out: str) -> None:
    assert "demo" in out and "victim stargan" in out and "vintagify" in out and "styles26" in out


def _help(out: str) -> None:
    assert all(word in out for word in ("protect", "evaluate", "serve", "models"))


CHECKS = [
    ("-o out/protected.png", _every_victim),
    ("-o out/real.png --targets vintage", _one_victim),
    ("--figure out/what-it-did.png", "figure"),
    ("--policy fixed", _fixed),
    ("--method pgd", _pgd_json),
    ("--method union-saliency-robust", _robust),
    ("--box 120,0,330,210", _box),
    ("--list todo.txt", None),
    ("--ray local", None),
    ("--generator 200000-G.ckpt", _generator),
    ("models list", _models_list),
    ("--help", _help),
]
FAST = ["--steps", "3", "--budget-steps", "3"]  # where the check does not depend on how strong the result is


def test_using_it(scratch):
    listed = [c for page, title in USING_IT for c in commands(title, page)]
    assert listed, "no commands found"
    used = {key for key, _ in CHECKS if any(key in cmd for cmd, _ in listed)}
    assert used == {key for key, _ in CHECKS}, f"no command left for {sorted({k for k, _ in CHECKS} - used)}"
    run(["models", "prepare"], scratch)
    for cmd, comment in listed:
        matches = [(key, check) for key, check in CHECKS if key in cmd]
        assert matches, f"no check for the documented command {cmd!r} ({comment})"
        key, check = matches[0]
        args = shlex.split(cmd)
        assert args[0] == "faceshield", cmd
        args = args[1:]
        if key in ("-o out/protected.png", "--method union-saliency-robust", "--figure out/what-it-did.png"):
            args += FAST
        if key in ("--list todo.txt", "--ray local"):
            args += [*FAST, "--targets", "vintage", "--policy", "fixed"]
        if key == "--ray local":  # the same job again, on Ray, into a fresh folder (the local one is done)
            shutil.rmtree(scratch / "protected", ignore_errors=True)
        result = run(args, scratch)
        if key == "--ray local":  # the folder alone this time
            assert result.returncode == 0, result.stderr[-2000:]
            _folder(scratch, ("a.png", "trip/b.png"))
        elif key == "--list todo.txt":
            assert result.returncode == 0, result.stderr[-2000:]
            _folder(scratch)
        elif check == "figure":
            _figure(report(result, (0, 3)), scratch)
        else:  # a weaker run (FAST, or a method not aimed at identity) may end "not protected": exit 3
            check(report(result, (0, 3)))
    assert np.asarray(Image.open(scratch / "out" / "box.png")).shape == (512, 512, 3)
