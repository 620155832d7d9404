"""The common end of the resumable benchmarks (identity_celeba, held_out, paper_tables_celeba,
vae_control, other_styles): each appends numbers-only records to a JSONL file and rewrites its
report from all the records, so a run can stop, resume, or only rewrite the report. A report's hand-written interpretation lives
in its notes file (`args.notes`, default NAME-notes.md beside the JSONL), appended on every rewrite,
so rewriting a report never loses it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def finish(args, run: Callable[[object], None], summarize: Callable[[object], str]) -> int:
    """Run (unless --report-only), then write the report (and the notes, if any) to `args.out` and
    print it. The report's header names the torch version, so `args.torch` is set first."""
    import torch

    args.torch = torch.__version__
    if not args.report_only:
        run(args)
    report = summarize(args)
    notes = notes_path(args)
    if notes.exists():
        report += "\n" + notes.read_text().strip() + "\n"
    args.out.write_text(report)
    print(args.out.read_text())
    return 0


def notes_path(args) -> Path:
    """The report's interpretation: `--notes` where the script has it, else NAME-notes.md beside --jsonl."""
    return getattr(args, "notes", None) or args.jsonl.with_name(args.jsonl.stem + "-notes.md")
