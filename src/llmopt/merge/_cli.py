"""The ``llmopt merge`` command: exit 0 when every assertion passes, 1 when one fails
(or errors), 2 when the shards cannot be merged."""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from ..registry import Registry
    from ..report import ReportTarget
    from ._merge import Merged


def add_merge_command(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    merge = sub.add_parser(
        "merge", help="merge the results JSON of --llmopt-shard runs and gate on the whole run's verdicts"
    )
    merge.add_argument("shards", nargs="+", type=Path, metavar="SHARD.json", help="every shard's --llmopt-json file")
    merge.add_argument("-o", "--output", required=True, type=Path, metavar="RESULTS.json", help="the merged results JSON")
    merge.add_argument("--junitxml", type=Path, metavar="PATH", help="write a JUnit XML report of the verdicts")
    merge.add_argument(
        "--report", action="append", default=[], metavar="[FORMAT:]PATH",
        help="write a report as --llmopt-report does (.html, .md, .json, .xml or a plugin's; repeatable)",
    )
    merge.add_argument(
        "--rootdir", type=Path, default=None, metavar="DIR",
        help="the rootdir the shards ran in, which their spec paths are relative to (default: the current folder)",
    )
    merge.add_argument("--worst", type=int, default=3, metavar="N", help="worst cases shown per failure (3)")
    merge.set_defaults(run=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    from ..errors import LLMOptError
    from ._merge import merge_shards

    try:
        with warnings.catch_warnings(record=True) as caught, _collector_paused():
            warnings.simplefilter("always")
            merged = merge_shards(args.shards, args.rootdir or Path.cwd(), args.worst)
        targets = _targets(args, merged.registry)
    except LLMOptError as exc:  # MergeRefused, ReportError, a project's plugin that does not load
        print(f"llmopt merge: {exc}", file=sys.stderr)
        return 2
    for warning in caught:
        print(f"llmopt merge: warning: {warning.message}", file=sys.stderr)
    return _finish(merged, args.output, targets)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while the shards' records are read (millions
    of objects, no cycles: its passes cost a third of a large merge), as it was after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _targets(args: argparse.Namespace, registry: "Registry | None") -> list["ReportTarget"]:
    """--junitxml and the --report targets, each in a registered format."""
    from ..registry import create_registry
    from ..report import ReportTarget, report_target
    from ..report._format import named_format

    formats = (registry or create_registry(entry_points=False)).report_formats
    junit = [ReportTarget(args.junitxml, named_format("junit", formats))] if args.junitxml else []
    return junit + [report_target(text, formats) for text in args.report]


def _finish(merged: "Merged", output: Path, targets: list["ReportTarget"]) -> int:
    """Write the results and reports, print the summary; the exit status."""
    from ..report import summary_lines, write_reports

    doc = merged.doc()
    try:
        merged.store.write(output, doc)
    except OSError as exc:
        print(f"llmopt merge: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"llmopt summary (merged from {merged.shards} shards)")
    for line in summary_lines(doc):
        print(line)
    usage = merged.store.usage_total()
    print(f"spent ${usage.cost_usd:.4f} on {usage.calls} calls across the shards; {usage.cache_hits} answers from the cache")
    print(f"results JSON: {output}")
    for line in write_reports(doc, targets):
        print(line)
    outcomes = merged.outcomes()
    counts = {key: outcomes.count(key) for key in ("passed", "failed", "error", "skipped") if key in outcomes}
    print(", ".join(f"{count} {key}" for key, count in counts.items()) or "no assertions")
    return 0 if merged.passed else 1
