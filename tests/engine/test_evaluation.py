"""The evaluation package: every table row, the engine's numbers, resuming, data layouts, stats.

A tiny StarGAN (32x32) and a fixed elliptical "saliency model" keep the whole plan (13 rows, two
protocols, five transforms) to a few seconds on a CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from faceshield.engine import AttackConfig, FaceShieldEngine, ModelSet, ProtectRequest
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.evaluation import (
    ALL_ROWS,
    TRANSFORMS,
    Evaluation,
    EvaluationPlan,
    control_metrics,
    evaluate_pair,
    open_dataset,
    sample_seed,
    write_report,
)
from faceshield.engine.evaluation.figures import GRID_COLUMNS
from faceshield.engine.evaluation.runner import RESULTS_FILE
from faceshield.engine.evaluation.store import ResultStore
from tests.helpers import ATTRS, ellipse_mask, tiny_generator

RES = 32
FAST = AttackConfig(steps=2, noise_steps=1)


class EllipseSaliency:
    """Stands in for TRACER: the same soft face-shaped mask for every image."""

    name = "ellipse"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        return ellipse_mask(h, w).expand(n, 1, h, w).clone()


def tiny_models(saliency: bool = True) -> ModelSet:
    return ModelSet(
        name="tiny",
        version="test",
        generator=tiny_generator(seed=3),
        attributes=list(ATTRS),
        resolution=RES,
        saliency=EllipseSaliency() if saliency else None,
        saliency_name="ellipse" if saliency else "none",
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared, loaded 2-core box two threads spin against each other
    and tiny convolutions get 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def engine(one_thread) -> FaceShieldEngine:
    return FaceShieldEngine(tiny_models())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Five smooth synthetic 'faces' of odd sizes (centre-cropped and resized to 32)."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:40, 0:36] / 40.0
    for k in range(5):
        base = rng.uniform(40, 215, size=3)
        img = base + 60 * np.sin(6 * xx + k)[..., None] * rng.uniform(-1, 1, 3) + 40 * (yy[..., None] - 0.5)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"face{k}.png")
    return root


def plan(**kw) -> EvaluationPlan:
    base = dict(rows=tuple(ALL_ROWS), sizes=(1, 2), transforms=tuple(TRANSFORMS), batch_size=2, figures=1, attack=FAST)
    base.update(kw)
    return EvaluationPlan(**base)


@pytest.fixture(scope="module")
def full_run(engine, folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    ev = Evaluation(engine, open_dataset(folder, RES, ATTRS), plan(), out)
    ev.open()
    ev.run()
    paths = write_report(ev)
    return ev, paths


def _strip(records):
    return {k: {f: v for f, v in r.items() if f != "seconds"} for k, r in records.items()}


# -- every row, every table --------------------------------------------------------------------


@pytest.mark.slow
def test_every_table_row_is_produced(full_run):
    ev, paths = full_run
    report = json.loads(paths["json"].read_text())
    assert report["status"]["complete"]
    for protocol in ("per-target", "joint"):
        for size in ("1", "2"):
            rows = report["tables"]["protocols"][protocol][size]
            assert set(rows) == set(ALL_ROWS)
            for key, st in rows.items():
                assert st["images"] == int(size), key
                assert st["decisions"] == int(size) * len(ATTRS)
                for metric in ("l1", "l2", "psnr", "ssim"):
                    est = st["input"][metric]
                    if size == "1":  # one image: a mean, no interval
                        assert est["low"] is None and est["mean"] is not None
                    else:
                        assert est["low"] <= est["mean"] <= est["high"], (key, metric)
                assert set(st["robustness"]) == set(TRANSFORMS)
                assert 0 <= st["success"]["mean"] <= 1
        assert report["tables"]["findings"][protocol]["verdict"]
    assert report["tables"]["control"]["2"]["images"] == 2
    md = paths["markdown"].read_text()
    for row in ALL_ROWS.values():
        assert f"| {row.label} |" in md
    for heading in ("Table I", "Table II", "Table III", "Robustness", "Findings"):
        assert heading in md
    assert "Status: complete" in md


@pytest.mark.slow
def test_figures_are_written(full_run):
    ev, paths = full_run
    figs = ev.out_dir / "figures"
    for name in (
        "psnr-vs-success.png",
        "robustness-per-target.png",
        "robustness-joint.png",
        "sample-000-per-target.png",
        "sample-000-joint.png",
    ):
        assert (figs / name).is_file(), name
        assert f"figures/{name}" in paths["markdown"].read_text()
    assert not (figs / "sample-001-joint.png").exists()  # figures=1
    with Image.open(figs / "sample-000-per-target.png") as grid:
        assert grid.width > len(GRID_COLUMNS) * RES and grid.height > len(ATTRS) * RES


@pytest.mark.slow
def test_shared_configurations_are_computed_once(full_run):
    ev, _ = full_run
    # Spread-spectrum and the ablation baseline run the same stages: one set of records.
    assert ALL_ROWS["b"].work_key == ALL_ROWS["spread-spectrum"].work_key
    assert ALL_ROWS["full"].work_key == ALL_ROWS["union-saliency"].work_key
    work = {r.work_key for r in ALL_ROWS.values()}
    per_image = len(work) * (len(ATTRS) + 1) + 1  # per-target + joint per configuration, + control
    assert len(ev.store.records) == 2 * per_image


# -- numbers are the engine's -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["joint", "per-target"])
def test_numbers_equal_the_engines(full_run, engine, protocol):
    ev, _ = full_run
    row = ALL_ROWS["union-saliency"]
    ids = ev.sample_ids[:2]  # the first chunk (batch_size 2)
    samples = [ev.dataset.load(i) for i in ids]
    targets = None if protocol == "joint" else ["Male"]
    config = FAST.replace(method=row.key, stages=row.stages)
    requests = [
        ProtectRequest(
            image=s.image, original_attributes=s.attributes, targets=targets or list(ATTRS), seed=sample_seed(0, s.id)
        )
        for s in samples
    ]
    outcomes = engine.protect(requests, config)
    for s, o in zip(samples, outcomes, strict=True):
        rec = ev.store.records[(row.work_key, protocol, s.id, "*" if targets is None else "Male")]
        assert rec["input"] == pytest.approx(o.input.as_dict(), abs=0, rel=0)
        assert rec["targets"] == [m.as_dict() for m in o.targets]
        # Robustness numbers: engine.evaluate(T(original), T(protected)), batched in the runner.
        direct = evaluate_pair(engine, s.image, o.protected, s.attributes, targets, None, ["jpeg75", "blur1"])
        assert direct.input == o.input
        _same_metrics(rec["targets"], direct.targets)
        for t in ("jpeg75", "blur1"):
            _same_metrics(rec["transformed"][t], direct.transformed[t])


def _same_metrics(recorded: list[dict], direct) -> None:
    """Equal up to the float rounding of a batched convolution."""
    assert len(recorded) == len(direct)
    for r, d in zip(recorded, direct, strict=True):
        d = d.as_dict()
        assert r["target"] == d["target"] and r["success"] == d["success"]
        assert r["masked_success"] == d["masked_success"]
        for f in ("l1", "mse", "masked_mse", "edited_fraction"):
            assert r[f] == pytest.approx(d[f], rel=1e-5, abs=1e-7)


@pytest.mark.slow
def test_control_is_the_transform_alone(full_run, engine):
    ev, _ = full_run
    s = ev.dataset.load(ev.sample_ids[1])
    rec = ev.store.records[("control", "control", s.id, "*")]
    direct = control_metrics(engine, s.image, s.attributes, None, None, list(TRANSFORMS))
    for t in TRANSFORMS:
        _same_metrics(rec["transformed"][t], direct[t])


@pytest.mark.slow
def test_table_means_are_the_records_means(full_run):
    ev, paths = full_run
    report = json.loads(paths["json"].read_text())
    row = ALL_ROWS["pgd"]
    recs = [ev.store.records[(row.work_key, "per-target", i, t)] for i in ev.sample_ids[:2] for t in ATTRS]
    table = report["tables"]["protocols"]["per-target"]["2"]["pgd"]
    assert table["input"]["psnr"]["mean"] == pytest.approx(np.mean([r["input"]["psnr"] for r in recs]))
    flags = [m["success"] for r in recs for m in r["targets"]]
    assert table["success"]["mean"] == pytest.approx(np.mean(flags))
    assert table["decisions"] == len(flags) == 2 * len(ATTRS)


# -- interrupt and resume --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [3, 14])
def test_resumed_run_equals_uninterrupted(engine, folder, tmp_path, stop_at):
    small = plan(rows=("pgd", "b+u"), sizes=(3,), transforms=("jpeg85",), batch_size=2, figures=1)
    whole = Evaluation(engine, open_dataset(folder, RES, ATTRS), small, tmp_path / "whole")
    whole.open()
    whole.run()

    calls = {"n": 0}

    def interrupt(progress):
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise KeyboardInterrupt

    cut = Evaluation(engine, open_dataset(folder, RES, ATTRS), small, tmp_path / "cut")
    cut.open()
    with pytest.raises(KeyboardInterrupt):
        cut.run(interrupt)
    partial = cut.status()
    assert 0 < partial["done"] < partial["expected"]
    paths = write_report(cut)  # a valid partial report
    assert json.loads(paths["json"].read_text())["status"]["complete"] is False
    assert "Status: PARTIAL" in paths["markdown"].read_text()

    resumed = Evaluation(engine, open_dataset(folder, RES, ATTRS), small, tmp_path / "cut")
    resumed.open()
    resumed.run()
    assert resumed.status()["complete"]
    assert _strip(resumed.store.records) == _strip(whole.store.records)
    assert write_report(resumed)["json"].read_text().count('"complete": true') == 1


def test_truncated_last_line_is_dropped(tmp_path):
    store = ResultStore(tmp_path / RESULTS_FILE)
    store.append([{"row": "r", "protocol": "joint", "sample": "a", "target": "*", "input": {"psnr": float("inf")}}])
    with open(store.path, "a") as f:
        f.write('{"row": "r", "protocol": "joi')  # killed mid-write
    again = ResultStore(store.path)
    assert list(again.load()) == [("r", "joint", "a", "*")]
    assert again.records[("r", "joint", "a", "*")]["input"]["psnr"] is None  # JSON has no infinity
    again.append([{"row": "r", "protocol": "joint", "sample": "b", "target": "*"}])
    assert len(ResultStore(store.path).load()) == 2


def test_a_different_run_is_not_mixed_in(engine, folder, tmp_path):
    small = plan(rows=("pgd",), sizes=(1,), transforms=(), figures=0, protocols=("joint",))
    ev = Evaluation(engine, open_dataset(folder, RES, ATTRS), small, tmp_path)
    ev.open()
    ev.run()
    other = Evaluation(
        engine,
        open_dataset(folder, RES, ATTRS),
        plan(
            rows=("pgd",), sizes=(1,), transforms=(), figures=0, protocols=("joint",), attack=FAST.replace(epsilon=0.03)
        ),
        tmp_path,
    )
    with pytest.raises(InvalidInputError, match="epsilon|attack"):
        other.open()
    other.open(restart=True)
    assert other.status()["done"] == 0
    # More images or rows with the same settings extend the run instead.
    more = Evaluation(
        engine,
        open_dataset(folder, RES, ATTRS),
        plan(
            rows=("pgd", "ifgsm"),
            sizes=(2,),
            transforms=(),
            figures=0,
            protocols=("joint",),
            attack=FAST.replace(epsilon=0.03),
        ),
        tmp_path,
    )
    more.open()
    assert more.status()["done"] == 0 and more.status()["expected"] == 4


def test_masked_rows_are_skipped_without_a_saliency_model(folder, tmp_path):
    engine = FaceShieldEngine(tiny_models(saliency=False))
    ev = Evaluation(
        engine,
        open_dataset(folder, RES, ATTRS),
        plan(rows=("pgd", "saliency-aware", "union-saliency", "b+u"), sizes=(1,), transforms=(), protocols=("joint",)),
        tmp_path,
    )
    assert set(ev.skipped) == {"saliency-aware", "union-saliency", "b+u"}
    ev.open()
    ev.run()
    paths = write_report(ev)
    md = paths["markdown"].read_text()
    assert "Skipped rows" in md and "saliency model" in md
    assert ev.status()["complete"]
    # The figures fall back to a row that ran; its masks are drawn as "not used".
    assert ev.figure_row.key == "pgd" and (tmp_path / "figures" / "sample-000-joint.png").is_file()


# -- data layouts ----------------------------------------------------------------------------


def test_plain_folder_and_errors(folder, tmp_path, engine):
    ds = open_dataset(folder, RES, ATTRS)
    assert ds.kind == "folder" and ds.ids == [f"face{k}.png" for k in range(5)]
    s = ds.load("face0.png")
    assert s.image.shape == (RES, RES, 3) and s.attributes is None
    with pytest.raises(InvalidInputError, match="no PNG/JPEG"):
        open_dataset(tmp_path, RES, ATTRS)
    with pytest.raises(InvalidInputError, match="has 5"):
        Evaluation(engine, ds, plan(sizes=(6,)), tmp_path / "x")
    with pytest.raises(InvalidInputError, match="unknown row"):
        Evaluation(engine, ds, plan(rows=("nope",)), tmp_path / "x")


def test_cli_writes_a_report_and_survives_ctrl_c(folder, tmp_path, monkeypatch, capsys):
    from faceshield.cli import evaluate as cli_evaluate
    from faceshield.cli.main import main

    monkeypatch.setattr(cli_evaluate, "load_models", lambda args: tiny_models())
    argv = [
        "evaluate",
        str(folder),
        "--out",
        str(tmp_path / "r"),
        "--n",
        "2",
        "--methods",
        "pgd,union-saliency",
        "--protocol",
        "joint",
        "--steps",
        "1",
        "--robustness",
        "--no-progress",
        "--figures",
        "1",
    ]
    real_run = Evaluation.run

    def interrupted(self, on_progress=None):
        def stop(progress):
            if progress.done_items >= 1:
                raise KeyboardInterrupt

        return real_run(self, stop)

    monkeypatch.setattr(Evaluation, "run", interrupted)
    assert main(argv) == 130
    assert "partial" in capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["status"]["complete"] is False and report["status"]["done"] >= 1
    monkeypatch.setattr(Evaluation, "run", real_run)
    assert main(argv) == 0  # resumes
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["status"]["complete"] and report["plan"]["rows"] == ["pgd", "union-saliency"]
    assert (tmp_path / "r" / "figures" / "sample-000-joint.png").is_file()
    assert main(argv[:-2] + ["--epsilon", "0.03"]) == 2  # a different run in the same folder is refused
    assert "different settings" in capsys.readouterr().err
