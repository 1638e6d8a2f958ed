"""The ``llmopt`` command: work outside a test run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import LLMOptError
from ..recipe._cli import add_parser as add_recipes_parser

if TYPE_CHECKING:
    from ..recipe import RecipeBook
    from ..spec._project import Project


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmopt", description="LLM optimization specs, outside a test run.")
    parser.add_argument("--version", action="version", version=f"llmopt {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="print the JSON Schema of the spec format")
    validate = sub.add_parser("validate", help="check specs without running them")
    validate.add_argument("paths", nargs="*", type=Path, default=[Path("specs")], help="spec files or folders")
    validate.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE", help="project plugin module to load (repeatable)"
    )
    add_recipes_parser(sub)
    from ..finetune._cli import add_parser as add_finetune

    add_finetune(sub)
    from ..report._cli import add_report_commands
    from ._init import add_init_command

    add_init_command(sub)
    add_report_commands(sub)
    from ..merge._cli import add_merge_command

    add_merge_command(sub)
    from ..importer._cli import add_import_command

    add_import_command(sub)
    from ..search._cli import add_search_command

    add_search_command(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmopt")
    except PackageNotFoundError:
        return "(unknown version)"


def _validate(paths: Sequence[Path], plugins: Sequence[str]) -> int:
    from ._checking import validate

    return validate(paths, plugins, _display, _recipe_book)


def _print_out(text: str) -> int:
    """Print to stdout; a reader that stops early (``| head``) is no error."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it again at exit raises nothing."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _recipe_book(project: "Project | None" = None) -> "RecipeBook":
    """The recipes of ``project`` (its ``llmopt_recipes`` folder), by default the
    current folder's project."""
    from ..recipe import load_book
    from ..spec._project import Project

    return load_book((project or Project.of(Path.cwd())).recipes_folder(), _display)


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except (ValueError, OSError, RuntimeError):  # outside the folder, or a symlink loop
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(args, "run"):
        return int(args.run(args))
    try:
        if args.command == "schema":
            from ..spec import spec_schema

            return _print_out(json.dumps(spec_schema(), indent=2))
        if args.command == "recipes":
            from ..recipe._cli import run

            return run(args)
        if args.command == "finetune":
            from ..finetune._cli import run as run_finetune

            return run_finetune(args)
        return _validate(args.paths, args.plugin)
    except BrokenPipeError:  # llmopt validate | head
        _silence_stdout()
        return 0
    except LLMOptError as exc:
        print(f"llmopt: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
