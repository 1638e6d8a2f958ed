"""The ``llmopt report`` and ``llmopt compare`` commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._direction import fill_directions
from ._format import ReportError, ReportTarget, named_format, report_target
from ._write import load_results, write_report

if TYPE_CHECKING:
    from ..registry import Registry


def add_report_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    report = sub.add_parser("report", help="render reports from a results JSON (--llmopt-json)")
    report.add_argument("results", type=Path, help="a results JSON written by --llmopt-json")
    report.add_argument("--html", metavar="PATH", help="write the HTML report to PATH (whatever its suffix)")
    report.add_argument("--md", metavar="PATH", help="write the Markdown summary to PATH (whatever its suffix)")
    report.add_argument(
        "-o", "--output", action="append", default=[], metavar="[FORMAT:]PATH",
        help="write a report in any registered format (the project's plugins' too); the suffix picks it "
        "unless FORMAT: names it (repeatable)",
    )
    report.set_defaults(run=run_report)
    compare = sub.add_parser("compare", help="show metric changes between two results JSON files")
    compare.add_argument("old", type=Path, help="the earlier run's results JSON")
    compare.add_argument("new", type=Path, help="the later run's results JSON")
    compare.add_argument(
        "--fail-on-drop", type=float, metavar="X",
        help="exit 1 when any metric got worse by more than X (absolute, in the metric's direction: "
        "lower is better for latency and cost)",
    )
    compare.set_defaults(run=run_compare)


def _targets(args: argparse.Namespace, registry: "Registry") -> list[ReportTarget]:
    """The reports asked for: --html and --md name their format, -o picks one."""
    formats = registry.report_formats
    named = [(name, path) for name, path in (("html", args.html), ("markdown", args.md)) if path is not None]
    targets = [ReportTarget(Path(path), named_format(name, formats)) for name, path in named]
    return targets + [report_target(text, formats) for text in args.output]


def run_report(args: argparse.Namespace) -> int:
    if args.html is None and args.md is None and not args.output:
        print("llmopt report: nothing to write; give --html PATH, --md PATH and/or -o [FORMAT:]PATH", file=sys.stderr)
        return 2
    registry = _registry()
    try:
        targets = _targets(args, registry)
        doc = fill_directions(load_results(args.results), registry.metrics)
        for target in targets:
            write_report(doc, target.path, target.format)
            print(f"report: {target.path}")
    except ReportError as exc:
        print(f"llmopt: {exc}", file=sys.stderr)
        return 2
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from ._compare import compare, compare_rows, text_table

    metrics = _registry().metrics
    try:
        old, new = (fill_directions(load_results(path), metrics) for path in (args.old, args.new))
    except ReportError as exc:
        print(f"llmopt: {exc}", file=sys.stderr)
        return 2
    changes = compare(old, new)
    if not changes:
        print("no metrics in either run")
        return 0
    print("\n".join(text_table(compare_rows(changes, args.fail_on_drop))))
    dropped = [c for c in changes if args.fail_on_drop is not None and c.drop > args.fail_on_drop]
    if dropped:
        print(f"{len(dropped)} metric(s) dropped by more than {args.fail_on_drop:g}")
        return 1
    return 0


def _registry() -> "Registry":
    """The current folder's project's registry (its metrics' directions, its report
    formats); the built-in one, with a note, when the project's plugins do not load."""
    from ..registry import create_registry
    from ..spec._project import Project

    try:
        return Project.of(Path.cwd()).registry()
    except Exception as exc:  # a report must not depend on the project's plugins importing
        reason = f"{type(exc).__name__}: {exc}"
        print(f"llmopt: the project's plugins did not load ({reason}); using the built-in ones", file=sys.stderr)
        return create_registry(entry_points=False)
