"""``llmopt recipes list | show NAME[@V] | lint | diff NAME@A NAME@B``."""

from __future__ import annotations

import argparse
import difflib
import io
import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import RenderError
from ..spec._suggest import unknown_name
from ._model import Recipe, RecipeBook, RecipeVersion, demos_mapping

SETTING = "llmopt_recipes"


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """The ``recipes`` command and its actions."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"recipes folder (default: {SETTING} of the current project's pyproject.toml or pytest.ini,"
        " else recipes/ beside it)",
    )
    recipes = sub.add_parser("recipes", help="list, show, lint and compare the prompt recipes")
    actions = recipes.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[common], help="every recipe with its versions and fields")
    show = actions.add_parser("show", parents=[common], help="one version of a recipe (default: the latest)")
    show.add_argument("ref", metavar="NAME[@V]")
    actions.add_parser("lint", parents=[common], help="check every recipe file and render every version")
    diff = actions.add_parser("diff", parents=[common], help="what changed between two versions")
    diff.add_argument("a", metavar="NAME@A")
    diff.add_argument("b", metavar="NAME@B")


def recipes_folder(given: Path | None = None) -> Path:
    """``given``, else the ``llmopt_recipes`` folder of the current folder's project
    (``recipes`` beside its pyproject.toml or pytest.ini by default)."""
    if given is not None:
        return given
    from ..spec._project import Project

    return Project.of(Path.cwd()).recipes_folder()


def display(path: Path) -> str:
    """A path as users see it: relative to the current folder when possible."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def run(args: argparse.Namespace) -> int:
    """Run one ``recipes`` action; 0 ok, 1 problems found, 2 bad arguments."""
    from ._load import load_book

    folder = recipes_folder(args.dir)
    if not folder.is_dir():
        print(f"llmopt: no recipes folder: {display(folder)} (set {SETTING} or give --dir)", file=sys.stderr)
        return 2
    book = load_book(folder, display)
    actions: dict[str, Callable[[RecipeBook, argparse.Namespace], int]] = {
        "list": _list,
        "show": _show,
        "lint": _lint,
        "diff": _diff,
    }
    return actions[args.action](book, args)


# -- list -------------------------------------------------------------------------------


def _list(book: RecipeBook, args: argparse.Namespace) -> int:
    rows = [("recipe", "latest", "versions", "fields", "file")]
    rows += [_row(recipe) for recipe in (book.recipes[name] for name in book.names)]
    rows += [("?", "-", "-", f"unreadable ({_count(len(p))})", path) for path, p in book.unreadable.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return 0


def _row(recipe: Recipe) -> tuple[str, str, str, str, str]:
    if recipe.problems:
        return (recipe.name, "-", "-", f"({_count(len(recipe.problems))}: llmopt recipes lint)", recipe.path)
    latest = recipe.versions[recipe.latest] if recipe.latest is not None else None
    fields = ", ".join(latest.fields) if latest is not None and latest.fields else "-"
    return (recipe.name, str(recipe.latest), ", ".join(map(str, recipe.versions)), fields, recipe.path)


def _count(n: int) -> str:
    return f"{n} problem{'s' if n != 1 else ''}"


# -- show and diff ----------------------------------------------------------------------


def _show(book: RecipeBook, args: argparse.Namespace) -> int:
    version = _find(book, args.ref)
    if version is None:
        return 2
    recipe = book.recipes[version.name]
    print(f"# {version.ref} ({version.location}; versions: {', '.join(map(str, recipe.versions))})")
    print(_yaml_text(document(version)), end="")
    return 0


def _diff(book: RecipeBook, args: argparse.Namespace) -> int:
    a, b = _find(book, args.a), _find(book, args.b)
    if a is None or b is None:
        return 2
    left, right = _yaml_text(document(a)), _yaml_text(document(b))
    lines = difflib.unified_diff(left.splitlines(True), right.splitlines(True), a.ref, b.ref)
    text = "".join(lines)
    print(text if text else f"{a.ref} and {b.ref} are the same", end="" if text else "\n")
    return 0


def _find(book: RecipeBook, ref: str) -> RecipeVersion | None:
    """The version ``ref`` names (NAME, NAME@V, NAME@latest); prints why not."""
    name, _, wanted = ref.partition("@")
    recipe = book.find(name)
    if recipe is None:
        print(f"llmopt: {unknown_name('recipe', name, book.names)}", file=sys.stderr)
        return None
    if recipe.problems:
        print(f"llmopt: recipe '{name}' has problems: run llmopt recipes lint", file=sys.stderr)
        return None
    number = recipe.latest if wanted in ("", "latest") else int(wanted) if wanted.isdigit() else None
    if number is None or number not in recipe.versions:
        versions = ", ".join(map(str, recipe.versions))
        print(f"llmopt: recipe '{name}' has no version {wanted} (versions: {versions})", file=sys.stderr)
        return None
    return recipe.versions[number]


def document(version: RecipeVersion) -> dict[str, Any]:
    """A version as a plain mapping in a fixed key order, for ``show`` and ``diff``."""
    doc: dict[str, Any] = {"description": version.description} if version.description else {}
    if version.system is not None:
        doc["system"] = version.system
    doc["template"] = version.template
    if version.examples:
        doc["examples"] = [{"user": u, "assistant": a} for u, a in version.examples]
    if version.fields:
        doc["fields"] = {name: spec.describe() for name, spec in version.fields.items()}
    guardrails = version.guardrails
    rails = {"max_length": guardrails.max_length, "required": list(guardrails.required)}
    rails["forbidden"] = list(guardrails.forbidden)
    if not guardrails.empty:
        doc["guardrails"] = {k: v for k, v in rails.items() if v not in (None, [])}
    if version.demos is not None:
        doc["demos"] = demos_mapping(version.demos)
    if version.provenance is not None:
        doc["provenance"] = dict(version.provenance)
    return doc


def _yaml_text(doc: dict[str, Any]) -> str:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.width = 4096  # one line per line of text, so diffs line up with what was written
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(_literal(doc), out)
    return out.getvalue()


def _literal(value: Any) -> Any:
    """Multi-line strings as literal blocks, so templates read as written."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value


# -- lint -------------------------------------------------------------------------------


def _lint(book: RecipeBook, args: argparse.Namespace) -> int:
    files = sorted({r.path for r in book.recipes.values()} | set(book.unreadable))
    problems: dict[str, list[str]] = {path: [] for path in files}
    for problem in book.problems:
        problems.setdefault(problem.path, []).append(str(problem))
    for recipe in book.recipes.values():
        for version in recipe.versions.values():
            problems[recipe.path] += render_problems(version)
    for path in files:
        found = problems[path]
        print("\n".join(found) if found else f"{path}: ok")
    failed = sum(1 for path in files if problems[path])
    print(f"{len(files)} recipe file(s), {failed} with problems")
    return 1 if failed else 0


def render_problems(version: RecipeVersion) -> list[str]:
    """Render ``version`` with its field defaults (else examples) and placeholder case
    fields; what breaks a guardrail or does not render."""
    from ._render import Renderer

    values = {name: spec.lint_value() for name, spec in version.fields.items()}
    where = f"{version.location}: versions.{version.version}: with the field defaults"
    try:
        Renderer().render(version.to_spec(values), _placeholders(version), where)
    except RenderError as exc:
        return [str(exc)]
    return []


def _placeholders(version: RecipeVersion) -> dict[str, str]:
    """``<name>`` for every variable the templates read that is not a field."""
    from jinja2 import meta
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment()
    names: set[str] = set()
    for source in (version.system or "", version.template):
        names |= meta.find_undeclared_variables(env.parse(source))
    return {name: f"<{name}>" for name in sorted(names - set(version.fields))}
