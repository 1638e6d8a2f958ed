"""The ``llmopt`` command: work outside a test run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from .errors import LLMOptError
from .recipe._cli import add_parser as add_recipes_parser

if TYPE_CHECKING:
    from ._project import Project
    from .recipe import RecipeBook


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmopt", description="LLM optimization specs, outside a test run.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="print the JSON Schema of the spec format")
    validate = sub.add_parser("validate", help="check specs without running them")
    validate.add_argument("paths", nargs="*", type=Path, default=[Path("specs")], help="spec files or folders")
    validate.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE", help="project plugin module to load (repeatable)"
    )
    add_recipes_parser(sub)
    from .finetune._cli import add_parser as add_finetune

    add_finetune(sub)
    from ._init import add_init_command
    from .report._cli import add_report_commands

    add_init_command(sub)
    add_report_commands(sub)
    return parser


def _spec_files(paths: Iterable[Path]) -> list[Path]:
    from .spec import is_spec_file

    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        found += [p for p in candidates if p.suffix in (".yaml", ".yml") and is_spec_file(p)]
    return found


def _validate(paths: Sequence[Path], plugins: Sequence[str]) -> int:
    from ._project import Project
    from .spec import load_scenario

    missing = [p for p in paths if not p.exists()]
    if missing:
        print("\n".join(f"llmopt: no such file or folder: {p}" for p in missing), file=sys.stderr)
        return 2
    files = _spec_files(paths)
    by_project: dict[Path, tuple[Project, list[Path]]] = {}
    for path in files:  # each spec with its own project's plugins and recipes
        project = Project.of(path)
        by_project.setdefault(project.root, (project, []))[1].append(path)
    failed = 0
    for project, specs in by_project.values():
        registry = project.registry(plugins)
        recipes = _recipe_book(project)
        for path in specs:
            try:
                scenario = load_scenario(path, registry, display_path=_display(path), recipes=recipes)
            except LLMOptError as exc:
                failed += 1
                print(f"{_display(path)}: {exc}")
                continue
            print(f"{_display(path)}: ok ({scenario.id}: {len(scenario.variants)} variants, {len(scenario.assertions)} checks)")
    print(f"{len(files)} spec(s), {failed} with problems")
    return 1 if failed else 0


def _recipe_book(project: "Project | None" = None) -> "RecipeBook":
    """The recipes of ``project`` (its ``llmopt_recipes`` folder), by default the
    current folder's project."""
    from ._project import Project
    from .recipe import load_book

    return load_book((project or Project.of(Path.cwd())).recipes_folder(), _display)


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(args, "run"):
        return int(args.run(args))
    try:
        if args.command == "schema":
            from .spec import spec_schema

            print(json.dumps(spec_schema(), indent=2))
            return 0
        if args.command == "recipes":
            from .recipe._cli import run

            return run(args)
        if args.command == "finetune":
            from .finetune._cli import run as run_finetune

            return run_finetune(args)
        return _validate(args.paths, args.plugin)
    except LLMOptError as exc:
        print(f"llmopt: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
