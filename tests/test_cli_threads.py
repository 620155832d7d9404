"""--threads auto: the cores other work leaves idle now, read from /proc/stat over a short window
(the 1-minute load average lags, and sent the main job on an idle box to one thread)."""

from __future__ import annotations

import os

import pytest

from faceshield.cli import common
from faceshield.engine.errors import InvalidInputError


def stat_line(user: int, idle: int) -> str:
    # cpu  user nice system idle iowait irq softirq steal guest guest_nice
    return f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"


def watched(tmp_path, monkeypatch, before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """busy_cores over a fake /proc/stat that reads `before`, then `after` once the window passed."""
    path = tmp_path / "stat"
    path.write_text(stat_line(*before))
    monkeypatch.setattr("time.sleep", lambda _s: path.write_text(stat_line(*after)))
    return common.busy_cores(stat=str(path))


def test_busy_cores_is_the_non_idle_share_of_every_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert watched(tmp_path, monkeypatch, (100, 100), (100, 150)) == 0.0  # all idle
    assert watched(tmp_path, monkeypatch, (100, 100), (125, 125)) == pytest.approx(1.0)  # half of 2 CPUs
    assert watched(tmp_path, monkeypatch, (100, 100), (150, 100)) == pytest.approx(2.0)
    assert watched(tmp_path, monkeypatch, (100, 100), (100, 100)) is None  # no time passed: no answer


def test_a_missing_stat_file_gives_no_answer(tmp_path):
    assert common.busy_cores(window=0, stat=str(tmp_path / "absent")) is None


@pytest.mark.parametrize(("busy", "want"), [(0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (2.0, 1)])
def test_auto_takes_the_idle_cores_and_at_least_one(monkeypatch, busy, want):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(common, "busy_cores", lambda: busy)
    assert common.choose_threads("auto") == want


def test_auto_falls_back_to_the_load_average(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(common, "busy_cores", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    assert common.choose_threads("auto") == 1


def test_a_number_is_taken_as_given_and_nonsense_refused():
    assert common.choose_threads("3") == 3
    for bad in ("0", "-1", "two", ""):
        with pytest.raises(InvalidInputError, match="threads"):
            common.choose_threads(bad)
