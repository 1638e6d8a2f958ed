"""The ``llmopt`` command: work outside a test run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterable, Sequence

from .errors import LLMOptError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmopt", description="LLM optimization specs, outside a test run.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="print the JSON Schema of the spec format")
    validate = sub.add_parser("validate", help="check specs without running them")
    validate.add_argument("paths", nargs="*", type=Path, default=[Path("specs")], help="spec files or folders")
    validate.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE", help="project plugin module to load (repeatable)"
    )
    from .finetune._cli import add_parser as add_finetune

    add_finetune(sub)
    return parser


def _spec_files(paths: Iterable[Path]) -> list[Path]:
    from .spec import is_spec_file

    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        found += [p for p in candidates if p.suffix in (".yaml", ".yml") and is_spec_file(p)]
    return found


def _validate(paths: Sequence[Path], plugins: Sequence[str]) -> int:
    from .registry import create_registry
    from .spec import load_scenario

    missing = [p for p in paths if not p.exists()]
    if missing:
        print("\n".join(f"llmopt: no such file or folder: {p}" for p in missing), file=sys.stderr)
        return 2
    registry = create_registry(plugins or _ini_plugins(), rootdir=Path.cwd())
    files = _spec_files(paths)
    failed = 0
    for path in files:
        try:
            scenario = load_scenario(path, registry, display_path=_display(path))
        except LLMOptError as exc:
            failed += 1
            print(f"{_display(path)}: {exc}")
            continue
        print(f"{_display(path)}: ok ({scenario.id}: {len(scenario.variants)} variants, {len(scenario.assertions)} checks)")
    print(f"{len(files)} spec(s), {failed} with problems")
    return 1 if failed else 0


def _ini_plugins() -> list[str]:
    """The ``llmopt_plugins`` setting of ./pyproject.toml, when there is one."""
    path = Path("pyproject.toml")
    if not path.is_file():
        return []
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return []
    options = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("pytest", {}).get("ini_options", {})
    value = options.get("llmopt_plugins", [])
    return [value] if isinstance(value, str) else list(value)


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "schema":
            from .spec import spec_schema

            print(json.dumps(spec_schema(), indent=2))
            return 0
        if args.command == "finetune":
            from .finetune._cli import run as run_finetune

            return run_finetune(args)
        return _validate(args.paths, args.plugin)
    except LLMOptError as exc:
        print(f"llmopt: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
