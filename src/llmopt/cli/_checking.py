"""``llmopt validate``: check specs without running them, every file to the end.

Each spec is loaded with its own project's plugins and recipes, and read deeply (its
datasets, templates and python functions). A file's problems are printed and the next
file is checked; nothing a file holds ends the command with a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LLMOptError

if TYPE_CHECKING:
    from ..recipe import RecipeBook
    from ..registry import Registry
    from ..spec._project import Project

Display = Callable[[Path], str]


@dataclass
class Found:
    """The specs named by the command's paths, and what else was found on the way."""

    specs: list[Path] = field(default_factory=list)
    #: Files named explicitly that are not specs: each counts as a spec with problems.
    errors: list[str] = field(default_factory=list)
    #: YAML files in the folders that look like specs but are not read as such.
    warnings: list[str] = field(default_factory=list)


def say(text: str, err: bool = False) -> None:
    """Print ``text``; a character the terminal cannot encode is shown escaped."""
    stream = sys.stderr if err else sys.stdout
    try:
        print(text, file=stream)
    except UnicodeEncodeError:
        encoding = stream.encoding or "utf-8"
        print(text.encode(encoding, "backslashreplace").decode(encoding), file=stream)


def unreadable_paths(paths: Sequence[Path]) -> list[str]:
    """A message per path that does not exist (or that the system refuses to look at)."""
    out = []
    for path in paths:
        try:
            if path.exists():
                continue
            broken = path.is_symlink()
            what = "a symbolic link that leads nowhere (a loop?)" if broken else "no such file or folder"
            out.append(f"llmopt: {what}: {path}")
        except OSError as exc:
            out.append(f"llmopt: cannot read {_short(str(path))}: {exc.strerror or exc}")
    return out


def find_specs(paths: Sequence[Path], display: Display) -> Found:
    """The specs in ``paths``: files named explicitly must be specs; in folders, other
    YAML files are skipped (with a warning when one looks like a misspelt spec)."""
    from ..spec import is_spec_file

    found = Found()
    for path in paths:
        if not _is_dir(path):
            if is_spec_file(path):
                found.specs.append(path)
            else:
                found.errors.append(_not_a_spec(path, display))
            continue
        for candidate in _yaml_files(path):
            if is_spec_file(candidate):
                found.specs.append(candidate)
            else:
                found.warnings += _lookalike_lines(candidate, display, "warning: ")
    return found


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _yaml_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    except OSError:
        return []


def _not_a_spec(path: Path, display: Display) -> str:
    lines = _lookalike_lines(path, display, "")
    if lines:
        return lines[0]
    return f"{display(path)}: not a spec: a spec is a .yaml or .yml file that starts with 'llmopt: 1'"


def _lookalike_lines(path: Path, display: Display, prefix: str) -> list[str]:
    from ..spec import lookalike

    found = lookalike(path)
    if found is None:
        return []
    return [f"{display(path)}:{found.line}:{found.col}: {prefix}{found.message}"]


def validate(paths: Sequence[Path], plugins: Sequence[str], display: Display, book: Callable[[Project], RecipeBook]) -> int:
    """Check every spec in ``paths``; 0 when all are sound, 1 otherwise, 2 for a bad path."""
    missing = unreadable_paths(paths)
    if missing:
        say("\n".join(missing), err=True)
        return 2
    found = find_specs(paths, display)
    for line in [*found.errors, *found.warnings]:
        say(line)
    failed = len(found.errors)
    for project, specs in _by_project(found.specs):
        registry, recipes, problem = _lookups(project, plugins, book)
        for path in specs:
            failed += not _check(path, registry, recipes, display, problem)
    summary = f"{len(found.specs) + len(found.errors)} spec(s), {failed} with problems"
    if found.warnings:
        summary += f", {len(found.warnings)} other YAML file(s) skipped with a warning"
    say(summary)
    return 1 if failed else 0


def _by_project(specs: Sequence[Path]) -> list[tuple[Project, list[Path]]]:
    """The specs grouped by project, so each loads with its own plugins and recipes."""
    from ..spec._project import Project

    groups: dict[Path, tuple[Project, list[Path]]] = {}
    for path in specs:
        project = Project.of(path)
        groups.setdefault(project.root, (project, []))[1].append(path)
    return list(groups.values())


def _lookups(
    project: Project, plugins: Sequence[str], book: Callable[[Project], RecipeBook]
) -> tuple[Registry | None, RecipeBook | None, str | None]:
    """The project's registry and recipes, or why they cannot be had (a broken plugin)."""
    try:
        return project.registry(plugins), book(project), None
    except LLMOptError as exc:
        return None, None, str(exc)


def _check(
    path: Path, registry: Registry | None, recipes: RecipeBook | None, display: Display, problem: str | None
) -> bool:
    """Load one spec and print its verdict; True when it is sound."""
    from ..spec import load_scenario

    shown = display(path)
    if problem is not None:
        say(f"{shown}: {problem}")
        return False
    try:
        scenario = load_scenario(path, registry, display_path=shown, recipes=recipes, deep=True)
    except LLMOptError as exc:
        say(f"{shown}: {exc}")
        return False
    except Exception as exc:  # noqa: BLE001 - never let one file stop the others
        say(f"{shown}: internal error while checking the spec ({type(exc).__name__}: {exc}); please report it")
        return False
    search = scenario.search
    searched = f", a {search.strategy} search over {len(search.candidates)} candidates" if search is not None else ""
    say(f"{shown}: ok ({scenario.id}: {len(scenario.variants)} variants, {len(scenario.assertions)} checks{searched})")
    return True


def _short(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"
