"""``llmopt init [DIR]``: a small working project whose ``pytest specs/`` passes at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SCAFFOLD = Path(__file__).parent / "_scaffold"
#: Template files stored under another name in the package (dot files, package markers).
RENAMED = {"gitignore": ".gitignore", "github-workflow.yml": ".github/workflows/llmopt.yml"}
CREATED_EMPTY = ("plugins/__init__.py",)


def add_init_command(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    init = sub.add_parser("init", help="create a small working llmopt project")
    init.add_argument("directory", nargs="?", type=Path, default=Path("."), help="where (default: here)")
    init.set_defaults(run=run_init)


def scaffold_files() -> dict[str, str]:
    """Target path -> content of every file of a new project."""
    files = {}
    for path in sorted(p for p in SCAFFOLD.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(SCAFFOLD).as_posix()
        files[RENAMED.get(rel, rel)] = path.read_text(encoding="utf-8")
    return files | {name: "" for name in CREATED_EMPTY}


def init_project(directory: Path) -> list[str]:
    """Write the project into ``directory``; FileExistsError lists every file in the way."""
    files = scaffold_files()
    taken = sorted(name for name in files if (directory / name).exists())
    if taken:
        raise FileExistsError(", ".join(taken))
    name = directory.resolve().name or "llmopt-project"
    for rel, text in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("{name}", name) if rel == "README.md" else text, encoding="utf-8")
    return list(files)


def run_init(args: argparse.Namespace) -> int:
    try:
        written = init_project(args.directory)
    except FileExistsError as exc:
        print(f"llmopt init: {args.directory} already has: {exc}; nothing was written", file=sys.stderr)
        return 1
    print(f"created an llmopt project in {args.directory} ({len(written)} files):")
    print("\n".join(f"  {name}" for name in sorted(written)))
    print(f"next: cd {args.directory} && pytest specs/")
    return 0
