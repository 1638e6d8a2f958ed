"""``llmopt import promptfoo CONFIG [-o DIR] [--baseline NAME] [--threshold X]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LLMOptError
from ._promptfoo import ImportResult, import_promptfoo
from ._source import shown

#: Exit codes: everything converted, some parts left out, the config cannot be read.
CONVERTED, PARTIAL, UNREADABLE = 0, 3, 2


def add_import_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("import", help="turn another tool's config into llmopt specs")
    tools = command.add_subparsers(dest="tool", required=True)
    promptfoo = tools.add_parser("promptfoo", help="a promptfooconfig.yaml: prompts x providers x tests")
    promptfoo.add_argument("config", type=Path, help="the promptfoo config file")
    promptfoo.add_argument("-o", "--output", type=Path, default=Path("specs"), help="folder of the spec (default: specs)")
    promptfoo.add_argument("--baseline", metavar="NAME", help="the variant listed first (default: the first prompt and provider)")
    promptfoo.add_argument("--threshold", type=_share, metavar="X", help="share of cases each check must pass (default: 1.0)")
    promptfoo.add_argument("--force", action="store_true", help="overwrite files of an earlier import")
    promptfoo.set_defaults(run=run_import)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def run_import(args: argparse.Namespace) -> int:
    try:
        result = import_promptfoo(args.config, args.output, args.baseline, args.threshold, args.force)
    except FileExistsError as exc:
        print(f"llmopt import: already there: {exc}; nothing was written (--force overwrites)", file=sys.stderr)
        return UNREADABLE
    except LLMOptError as exc:
        print(f"llmopt import: {exc}", file=sys.stderr)
        return UNREADABLE
    _print(result)
    return PARTIAL if result.skipped else CONVERTED


def _print(result: ImportResult) -> None:
    cases = f"{result.cases} case{'s' if result.cases != 1 else ''}"
    print(f"wrote {shown(result.spec)}: {cases}, {len(result.variants)} variant{'s' if len(result.variants) != 1 else ''} "
          f"({', '.join(result.variants)}; baseline {result.variants[0]})")
    for path in result.written[1:]:
        print(f"  {shown(path)}")
    if result.plugin:
        print(f"add {result.plugin!r} to llmopt_plugins in your pytest settings (the python assertions' metrics)")
    if result.skipped:
        print(f"not converted ({len(result.skipped)}):")
        print("\n".join(f"  {s}" for s in result.skipped))
    else:
        print("everything converted")
    print(f"next: llmopt validate {shown(result.spec)} && pytest {shown(result.spec)}")
