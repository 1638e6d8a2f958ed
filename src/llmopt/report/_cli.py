"""The ``llmopt report`` and ``llmopt compare`` commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from ._write import ReportError, load_results, write_report


def add_report_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    report = sub.add_parser("report", help="render reports from a results JSON (--llmopt-json)")
    report.add_argument("results", type=Path, help="a results JSON written by --llmopt-json")
    report.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report")
    report.add_argument("--md", type=Path, metavar="PATH", help="write the Markdown summary")
    report.set_defaults(run=run_report)
    compare = sub.add_parser("compare", help="show metric changes between two results JSON files")
    compare.add_argument("old", type=Path, help="the earlier run's results JSON")
    compare.add_argument("new", type=Path, help="the later run's results JSON")
    compare.add_argument(
        "--fail-on-drop", type=float, metavar="X",
        help="exit 1 when any metric got worse by more than X (absolute; lower is better for latency and cost)",
    )
    compare.set_defaults(run=run_compare)


def run_report(args: argparse.Namespace) -> int:
    if args.html is None and args.md is None:
        print("llmopt report: nothing to write; give --html PATH and/or --md PATH", file=sys.stderr)
        return 2
    try:
        doc = load_results(args.results)
        for path in (args.html, args.md):
            if path is not None:
                write_report(doc, path)
                print(f"report: {path}")
    except ReportError as exc:
        print(f"llmopt: {exc}", file=sys.stderr)
        return 2
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from ._compare import compare, compare_rows, text_table

    try:
        old, new = load_results(args.old), load_results(args.new)
    except ReportError as exc:
        print(f"llmopt: {exc}", file=sys.stderr)
        return 2
    changes = compare(old, new, _direction())
    if not changes:
        print("no metrics in either run")
        return 0
    print("\n".join(text_table(compare_rows(changes, args.fail_on_drop))))
    dropped = [c for c in changes if args.fail_on_drop is not None and c.drop > args.fail_on_drop]
    if dropped:
        print(f"{len(dropped)} metric(s) dropped by more than {args.fail_on_drop:g}")
        return 1
    return 0


def _direction() -> Callable[[str], bool] | None:
    """Whether a metric key is higher-is-better, from the registered metrics (the
    project's plugins included) when they load; None falls back to the names."""
    try:
        from .._project import Project
        from ..registry import create_registry

        project = Project.of(Path.cwd())
        metrics = create_registry(project.plugins(), rootdir=project.root).metrics
    except Exception:  # a report must not depend on the project's plugins importing
        return None

    def higher(key: str) -> bool:
        metric = metrics.get(key.split("(", 1)[0])
        return bool(metric.higher_is_better) if metric is not None else not key.startswith(("latency", "cost"))

    return higher
