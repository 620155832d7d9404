"""scripts/check_types.py's comparison with its baseline, on canned mypy output (mypy is not run)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import check_types as ct  # noqa: E402

OUTPUT = """\
engine/faceshield/engine/a.py:10: error: Function is missing a return type annotation  [no-untyped-def]
engine/faceshield/engine/a.py:10: note: Use "-> None" if function does not return a value
engine/faceshield/engine/a.py:20: error: Function is missing a return type annotation  [no-untyped-def]
service/faceshield/service/b.py:7:5: error: Name "x" already defined on line 3  [no-redef]
service/faceshield/service/b.py:9: error: An error without a code
clients/faceshield/client/c.py:1: error: Missing type arguments for generic type "dict"  [type-arg]
Found 5 errors in 3 files (checked 9 source files)
"""


def baseline_of(output: str) -> Counter[str]:
    errors = [e for e in ct.parse(output) if not e.strict]
    return ct.read_baseline(ct.format_baseline(Counter(e.key for e in errors)))


def test_parse_keeps_errors_and_drops_line_numbers():
    errors = ct.parse(OUTPUT)
    assert [(e.path, e.line, e.code) for e in errors] == [
        ("engine/faceshield/engine/a.py", 10, "no-untyped-def"),
        ("engine/faceshield/engine/a.py", 20, "no-untyped-def"),
        ("service/faceshield/service/b.py", 7, "no-redef"),
        ("service/faceshield/service/b.py", 9, "misc"),
        ("clients/faceshield/client/c.py", 1, "type-arg"),
    ]
    assert errors[2].key == 'service/faceshield/service/b.py: [no-redef] Name "x" already defined on line N'
    assert [e.strict for e in errors] == [False, False, False, False, True]


def test_baseline_round_trip_keeps_counts_and_skips_comments():
    baseline = baseline_of(OUTPUT)
    assert baseline["engine/faceshield/engine/a.py: [no-untyped-def] Function is missing a return type annotation"] == 2
    assert sum(baseline.values()) == 4  # the SDK's error is never in the baseline
    text = ct.format_baseline(baseline)
    assert text.startswith("#") and text.splitlines()[3:] == sorted(text.splitlines()[3:])


def test_moved_lines_still_match():
    moved = OUTPUT.replace("a.py:10:", "a.py:14:").replace("a.py:20:", "a.py:31:").replace("line 3", "line 5")
    moved = "\n".join(line for line in moved.splitlines() if "client/c.py" not in line)
    result = ct.compare(ct.parse(moved), baseline_of(OUTPUT))
    assert result.ok and not result.new and not result.fixed


def test_a_new_error_fails_even_when_another_is_fixed():
    lines = [line for line in OUTPUT.splitlines() if "client/c.py" not in line and "b.py:9:" not in line]
    lines.append(
        "engine/faceshield/engine/a.py:40: error: Function is missing a return type annotation  [no-untyped-def]"
    )
    result = ct.compare(ct.parse("\n".join(lines)), baseline_of(OUTPUT))
    assert not result.ok
    assert [(e.path, e.line) for e in result.new] == [("engine/faceshield/engine/a.py", 40)]  # a third of one key
    assert list(result.fixed) == ["service/faceshield/service/b.py: [misc] An error without a code"]


def test_fixed_entries_pass_and_are_reported():
    fewer = "\n".join(line for line in OUTPUT.splitlines() if "a.py:20:" not in line and "client/c.py" not in line)
    result = ct.compare(ct.parse(fewer), baseline_of(OUTPUT))
    assert result.ok
    key = "engine/faceshield/engine/a.py: [no-untyped-def] Function is missing a return type annotation"
    assert result.fixed == Counter({key: 1})
    assert result.current[key] == 1
    assert any("1 baseline entry fixed" in line for line in ct.report(result))


def test_any_sdk_error_fails_whatever_the_baseline():
    result = ct.compare(ct.parse(OUTPUT), baseline_of(OUTPUT) + Counter({ct.parse(OUTPUT)[-1].key: 1}))
    assert not result.ok and not result.new
    assert [e.path for e in result.strict] == ["clients/faceshield/client/c.py"]


def test_update_refuses_to_grow(monkeypatch, tmp_path, capsys):
    baseline = tmp_path / "baseline.txt"
    monkeypatch.setattr(ct, "BASELINE", baseline)
    monkeypatch.setattr(ct, "ROOT", tmp_path)
    monkeypatch.setattr(ct, "run_mypy", lambda: OUTPUT.replace("client/c.py", "service/c.py"))
    assert ct.main(["--update"]) == 1 and not baseline.exists()  # growth without --allow-growth
    assert ct.main(["--update", "--allow-growth"]) == 0
    assert sum(ct.read_baseline(baseline.read_text()).values()) == 5
    monkeypatch.setattr(ct, "run_mypy", lambda: "\n".join(OUTPUT.splitlines()[:2]))  # only a.py:10 left
    assert ct.main([]) == 0  # fixed entries do not fail
    assert ct.main(["--update"]) == 0
    assert sum(ct.read_baseline(baseline.read_text()).values()) == 1
    monkeypatch.setattr(ct, "run_mypy", lambda: OUTPUT)
    assert ct.main([]) == 1  # new errors, and one in the SDK
    assert "strictly checked SDK" in capsys.readouterr().out
