"""The evaluation report as a user meets it: SIGTERM leaves a partial report like Ctrl-C, the
compute time and the run's command survive a terminated segment and a --report-only rewrite,
an unevaluated protocol reads as such, and the progress bar labels both of its measures."""

from __future__ import annotations

import io
import json
import os
import signal
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from faceshield.cli import evaluate as cli_evaluate
from faceshield.cli.main import main
from faceshield.engine import AttackConfig, FaceShieldEngine, ModelSet
from faceshield.engine.evaluation import Evaluation, EvaluationPlan, Progress, open_dataset, write_report
from tests.helpers import ATTRS, ellipse_mask, tiny_generator

RES = 32


class EllipseSaliency:
    name = "ellipse"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        return ellipse_mask(h, w).expand(n, 1, h, w).clone()


def tiny_models() -> ModelSet:
    return ModelSet(
        name="tiny",
        version="test",
        generator=tiny_generator(seed=3),
        attributes=list(ATTRS),
        resolution=RES,
        saliency=EllipseSaliency(),
        saliency_name="ellipse",
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(5)
    for k in range(3):
        Image.fromarray(rng.integers(30, 220, (36, 36, 3), dtype=np.uint8)).save(root / f"face{k}.png")
    return root


def test_sigterm_leaves_a_report_with_its_compute_time_and_the_runs_command(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_evaluate, "load_models", lambda args: tiny_models())
    out = tmp_path / "r"
    argv = ["evaluate", str(folder), "--out", str(out), "--n", "3", "--methods", "pgd,union-saliency"]
    argv += ["--protocol", "joint", "--steps", "1", "--batch", "1", "--figures", "0", "--no-progress"]
    real_run = Evaluation.run

    def terminated(self, on_progress=None):
        def stop(progress):
            if progress.done_items >= 1:
                os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (the main) thread

        return real_run(self, stop)

    monkeypatch.setattr(Evaluation, "run", terminated)
    monkeypatch.setattr(sys, "argv", ["faceshield", *argv, "--restart"])
    assert main([*argv, "--restart"]) == 143
    assert "terminated: run the same command again to resume" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    report = json.loads((out / "report.json").read_text())
    assert report["status"]["complete"] is False and report["status"]["done"] >= 1
    spent = report["status"]["compute_seconds"]
    assert spent > 0 and json.loads((out / "run.json").read_text())["compute_seconds"] == spent
    command = "faceshield " + " ".join(argv)  # without --restart, which would discard the run
    assert report["command"] == command and f"- Command: `{command}`" in (out / "report.md").read_text()

    monkeypatch.setattr(Evaluation, "run", real_run)
    monkeypatch.setattr(sys, "argv", ["faceshield", *argv, "--report-only"])
    assert main([*argv, "--report-only"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["command"] == command and again["status"]["compute_seconds"] == spent


def test_an_unevaluated_protocol_reads_as_such(folder, tmp_path):
    engine = FaceShieldEngine(tiny_models())
    plan = EvaluationPlan(rows=("pgd", "union-saliency"), sizes=(1,), figures=0, attack=AttackConfig(steps=1))
    ev = Evaluation(engine, open_dataset(folder, RES, ATTRS), plan, tmp_path / "a")
    ev.open()

    def stop(progress):  # per-target runs first: joint never starts
        if progress.done_items >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ev.run(stop)
    md = write_report(ev)["markdown"].read_text()
    assert "**joint** (1 images): the paper's ordering cannot be judged: union-saliency has no results" in md
    assert "(paper: )" not in md and "best first:  " not in md

    only_pgd = EvaluationPlan(rows=("pgd",), sizes=(1,), protocols=("joint",), figures=0, attack=AttackConfig(steps=1))
    ev = Evaluation(engine, open_dataset(folder, RES, ATTRS), only_pgd, tmp_path / "b")
    ev.open()
    ev.run()
    md = write_report(ev)["markdown"].read_text()
    assert "the paper's ordering cannot be judged: union-saliency was not part of this run." in md
    assert "PSNR ranking, best first: pgd." in md  # one method: no "(paper: ...)" to compare with


def test_progress_bar_labels_work_and_results():
    stream = io.StringIO()
    bar = cli_evaluate.ProgressBar(stream)
    bar(Progress(done_items=0, total_items=144, done_work=0.0, total_work=1000.0, label="pgd joint"))
    bar(Progress(done_items=28, total_items=144, done_work=51.0, total_work=1000.0, label="eot-blur joint"))
    last = stream.getvalue().splitlines()[-1]
    assert "5.1% of the work (generator passes)" in last and "results 28/144" in last


# -- figures: matplotlib, PNG and SVG, the tables' numbers ---------------------------------------
@pytest.fixture(scope="module")
def small_run(folder, tmp_path_factory):
    engine = FaceShieldEngine(tiny_models())
    plan = EvaluationPlan(
        rows=("pgd", "union-saliency"), sizes=(2,), transforms=("jpeg85",), figures=0, attack=AttackConfig(steps=1)
    )
    ev = Evaluation(engine, open_dataset(folder, RES, ATTRS), plan, tmp_path_factory.mktemp("fig"))
    ev.open()
    ev.run()
    return ev, write_report(ev)


def test_plots_are_png_and_svg_beside_the_report(small_run):
    import xml.etree.ElementTree as ET

    ev, paths = small_run
    report = json.loads(paths["json"].read_text())
    for stem in ("psnr-vs-success", "robustness-per-target", "robustness-joint"):
        png, svg = ev.out_dir / "figures" / f"{stem}.png", ev.out_dir / "figures" / f"{stem}.svg"
        with Image.open(png) as img:
            img.verify()
            assert img.format == "PNG"
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        text = svg.read_text()
        assert "PGD" in text or "pgd" in text.lower()  # labels stay text (svg.fonttype none)
        assert f"figures/{stem}.png" in report["figures"] and f"figures/{stem}.svg" in report["figures"]
        assert f"figures/{stem}.png" in paths["markdown"].read_text()


def test_plots_show_the_tables_numbers(small_run):
    from faceshield.engine.evaluation.figures import line_chart, scatter_plot
    from faceshield.engine.evaluation.plots import plot_data
    from faceshield.engine.evaluation.tables import build_tables

    ev, _ = small_run
    plan = ev.plan
    tables = build_tables(ev.records(), ev.sample_ids, ev.rows, plan.protocols, list(plan.sizes), plan.transforms, {})
    data = plot_data(ev, tables)
    points = data["psnr_plot"]["points"]
    assert len(points) == 4  # two methods x two protocols
    for p in points:
        key = next(r.key for r in ev.rows if r.label == p["label"])
        st = tables["protocols"][p["group"]][2][key]
        assert (p["x"], p["y"]) == (st["success"].mean, st["input"]["psnr"].mean)
    fig = scatter_plot(points, "t", "x", "y")
    drawn = {}
    for container in fig.axes[0].containers:
        line, _caps, (xbars, ybars) = container.lines
        x, y = line.get_xdata()[0], line.get_ydata()[0]
        drawn[(x, y)] = (xbars.get_segments()[0][:, 0].tolist(), ybars.get_segments()[0][:, 1].tolist())
    for p in points:
        xbar, ybar = drawn[(p["x"], p["y"])]
        assert xbar == pytest.approx([p["x_low"], p["x_high"]]) and ybar == pytest.approx([p["y_low"], p["y_high"]])

    lines = data["robustness_joint"]
    assert lines["categories"] == ["none", "JPEG 85"]
    fig = line_chart(lines["series"], lines["categories"], "t", "y")
    ys = sorted(tuple(c.lines[0].get_ydata()) for c in fig.axes[0].containers)
    assert ys == sorted(tuple(s["values"]) for s in lines["series"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["none", "JPEG 85"]


def test_svg_output_is_deterministic(small_run, tmp_path):
    from faceshield.engine.evaluation.figures import save_figure, scatter_plot
    from faceshield.engine.evaluation.plots import plot_data
    from faceshield.engine.evaluation.tables import build_tables

    ev, _ = small_run
    plan = ev.plan
    tables = build_tables(ev.records(), ev.sample_ids, ev.rows, plan.protocols, list(plan.sizes), plan.transforms, {})
    d = plot_data(ev, tables)["psnr_plot"]
    a = save_figure(scatter_plot(d["points"], d["title"], d["xlabel"], d["ylabel"]), tmp_path / "a")
    b = save_figure(scatter_plot(d["points"], d["title"], d["xlabel"], d["ylabel"]), tmp_path / "b")
    assert a["svg"].read_bytes() == b["svg"].read_bytes()
    assert a["png"].read_bytes() == b["png"].read_bytes()
