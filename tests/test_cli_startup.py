"""The command answers help, argument errors and `models list` without importing PyTorch (the seconds it costs
are measured in benchmarks/cli_startup.py, not here), and the lazy package namespaces still
resolve every public name."""

from __future__ import annotations

import json
import subprocess
import sys

import faceshield.engine
import faceshield.engine.evaluation
import faceshield.engine.modelsets
from faceshield.engine.evaluation.names import CROPS, PROTOCOLS, SPLITS, TRANSFORM_NAMES

HEAVY = ("torch", "onnxruntime", "grpc", "matplotlib")

# Each argv runs through the real entry point in one fresh interpreter; SystemExit codes and the
# heavy modules imported so far are reported after each.
PROBE = """
import json, sys, contextlib, io
from faceshield.cli.main import main
out = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    out.append([argv, code, sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)])
print(json.dumps(out))
"""


def test_help_and_argument_errors_import_no_heavy_module():
    cases = [
        ["--help"],
        ["protect", "--help"],
        ["evaluate", "--help"],
        ["serve", "--help"],
        ["models", "--help"],
        ["models", "import", "--help"],
        ["bench", "--help"],
        ["models", "list"],  # reads manifests only
        ["models", "list", "--json"],
        ["protect", "face.png"],  # -o missing
        ["evaluate", "data", "--out", "r", "--protocol", "sideways"],
        ["no-such-command"],
    ]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(cases), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [code for _, code, _ in results] == [0] * 9 + [2] * 3
    assert [(argv, heavy) for argv, _, heavy in results if heavy] == []


def test_lazy_namespaces_resolve_every_public_name():
    for package in (faceshield.engine, faceshield.engine.evaluation, faceshield.engine.modelsets):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
        assert set(package.__all__) <= set(dir(package))


def test_light_option_names_match_their_implementations():
    from faceshield.engine.evaluation import datasets, plan
    from faceshield.engine.io import processing

    assert tuple(processing.TRANSFORMS) == TRANSFORM_NAMES
    assert set(processing.TRANSFORM_LABELS) == set(TRANSFORM_NAMES)
    assert datasets.CROPS is CROPS and datasets.SPLITS is SPLITS and plan.PROTOCOLS is PROTOCOLS


def test_models_import_help_names_the_default_attributes(capsys):
    from faceshield.cli.main import main
    from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES

    try:
        main(["models", "import", "--help"])
    except SystemExit:
        pass
    assert ",".join(CELEBA_DEFAULT_ATTRIBUTES) in " ".join(capsys.readouterr().out.split())
