"""The folder job on Ray (`--ray`): the same outputs, bit for bit, as the local path on this CPU,
the same log and resume, and an address where nothing answers refused at once. Runs on a local
Ray started here (`ray.init(num_cpus=2)`); skipped where Ray is not installed."""

from __future__ import annotations

import json
import socket
import time

import pytest

from faceshield.cli.main import main
from tests.helpers import write_tiny_model_set
from tests.test_batch import FAST, make_folder, outputs

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.mark.slow
def test_the_ray_path_writes_what_the_local_path_writes(tmp_path, local_ray, capsys):
    src = tmp_path / "photos"
    make_folder(src, good=29)  # 32 files, 3 broken
    models = write_tiny_model_set(tmp_path / "tiny")
    # One thread on both paths: float sums reduce in another order on another thread count, so the
    # bytes match only at the same count (auto measures the load, which Ray's start-up raises).
    common = ["--models", str(models), *FAST, "--batch", "4", "--threads", "1"]
    assert main(["protect", str(src), "-o", str(tmp_path / "local"), *common]) == 1
    out = tmp_path / "ray"
    ray_args = ["protect", str(src), "-o", str(out), *common, "--ray", "auto", "--ray-workers", "2"]
    assert main(ray_args) == 1
    assert "3 of 32 images failed" in capsys.readouterr().err
    assert outputs(out) == outputs(tmp_path / "local") and len(outputs(out)) == 29
    log = out / "faceshield-results.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 32 and sum(r["status"] == "failed" for r in rows) == 3
    before = log.read_bytes()
    assert main(ray_args) == 1  # resume: nothing new
    assert log.read_bytes() == before


def test_a_ray_address_that_does_not_answer_is_refused_at_once(tmp_path, capsys):
    with socket.socket() as s:  # a port on this machine that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = tmp_path / "photos"
    make_folder(src, good=4)
    out = tmp_path / "out"
    t0 = time.monotonic()
    code = main(["protect", str(src), "-o", str(out), *FAST, "--ray", f"127.0.0.1:{port}"])
    assert code == 2 and time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in err and "Traceback" not in err
    assert not out.exists()
