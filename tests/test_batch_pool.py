"""The folder job on worker processes (`--workers N`): the same outputs, bit for bit, as one
process at one thread each; broken files fail alone; resume; models that cannot load and bad
--workers values are refused with a message a user can act on."""

from __future__ import annotations

import json

import pytest

from faceshield.cli.batch_pool import choose_workers, threads_each
from faceshield.cli.main import main
from faceshield.engine.errors import InvalidInputError
from tests.helpers import write_tiny_model_set
from tests.test_batch import FAST, make_folder, outputs


@pytest.fixture(scope="module")
def tiny_set_path(tmp_path_factory):
    return write_tiny_model_set(tmp_path_factory.mktemp("models") / "tiny")


@pytest.mark.slow
def test_two_workers_write_what_one_process_writes(tmp_path, tiny_set_path, capsys):
    src = tmp_path / "photos"
    make_folder(src, good=9)  # 12 files, 3 broken
    # One thread everywhere and batches of one on both paths: the bytes then match exactly.
    common = ["--models", str(tiny_set_path), *FAST, "--batch", "1", "--threads", "1"]
    assert main(["protect", str(src), "-o", str(tmp_path / "one"), *common]) == 1
    out = tmp_path / "two"
    args = ["protect", str(src), "-o", str(out), *common, "--workers", "2"]
    assert main(args) == 1
    assert "3 of 12 images failed" in capsys.readouterr().err
    assert outputs(out) == outputs(tmp_path / "one") and len(outputs(out)) == 9
    log = out / "faceshield-results.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 12 and sum(r["status"] == "failed" for r in rows) == 3
    assert all(r["seconds"]["batch_size"] == 1 for r in rows if r["status"] != "failed")
    # Resume: a missing output is redone by a worker, the same bytes; nothing else is touched.
    gone = next(iter(outputs(out)))
    before = outputs(out)
    (out / gone).unlink()
    assert main(args) == 1
    assert outputs(out) == before and len(log.read_text().splitlines()) == 13


@pytest.mark.slow
def test_models_a_worker_cannot_load_are_reported_not_a_traceback(tmp_path, capsys):
    src = tmp_path / "photos"
    make_folder(src, good=3)
    code = main(["protect", str(src), "-o", str(tmp_path / "out"), "--models", str(tmp_path / "nowhere"), *FAST])
    one_process = capsys.readouterr().err
    assert code == 2
    code = main(
        [
            "protect",
            str(src),
            "-o",
            str(tmp_path / "out2"),
            "--models",
            str(tmp_path / "nowhere"),
            *FAST,
            "--workers",
            "2",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "could not load the models" in err and "Traceback" not in err, err
    assert str(tmp_path / "nowhere") in err and str(tmp_path / "nowhere") in one_process


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_bad_worker_counts_are_refused_before_anything_is_written(tmp_path, value, capsys):
    src = tmp_path / "photos"
    make_folder(src, good=3)
    out = tmp_path / "out"
    assert main(["protect", str(src), "-o", str(out), *FAST, "--workers", value]) == 2
    assert "workers" in capsys.readouterr().err
    assert not out.exists()


def test_workers_and_ray_are_not_mixed(tmp_path, capsys):
    src = tmp_path / "photos"
    make_folder(src, good=3)
    assert main(["protect", str(src), "-o", str(tmp_path / "out"), *FAST, "--workers", "2", "--ray", "auto"]) == 2
    assert "--ray-workers" in capsys.readouterr().err


def test_how_many_workers_and_threads(monkeypatch):
    monkeypatch.setattr("faceshield.cli.common.busy_cores", lambda: 0.0)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert choose_workers("auto", 100, "cpu") == 4  # one per idle core
    assert choose_workers("auto", 3, "cpu") == 3  # never more than images
    assert choose_workers("auto", 100, "cuda") == 1  # the GPU is the bottleneck
    assert choose_workers("6", 100, "cpu") == 6
    monkeypatch.setattr("faceshield.cli.common.busy_cores", lambda: 3.0)
    assert choose_workers("auto", 100, "cpu") == 1  # the cores are taken: one process, as before
    assert threads_each("auto", 4) == "1" and threads_each("auto", 2) == "2" and threads_each("3", 2) == "3"
    assert threads_each("auto", 1) == "auto"
    with pytest.raises(InvalidInputError):
        choose_workers("many", 10, "cpu")
