"""What ``llmopt validate`` finds by reading a variant's data (never at collection).

Each dataset is read and checked row by row (malformed rows, fields the task names but
rows lack, duplicate ids); each template is checked against the fields the cases have;
the python provider's function is looked up in its source. Nothing is imported and
no template is rendered.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._merge import Merged
from ._model import VariantSpec
from ._problems import Issue, KeyPath
from ._suggest import close_match

if TYPE_CHECKING:
    from ..dataset import Case
    from ..registry import Registry

#: Dataset problems listed per variant before the rest are counted.
MAX_ROW_PROBLEMS = 20
#: Cases named in a message about a field some cases lack.
_CASES_NAMED = 3


@dataclass(frozen=True)
class _Template:
    """One template of a variant, where it is written, and the names it can rely on."""

    source: str
    where: KeyPath
    label: str
    always: frozenset[str]
    #: Whether messages name the template's line (not for a query llmopt wrote itself).
    lined: bool = True


def deep_issues(
    variant: VariantSpec, merged: Merged, spec_path: Path, registry: Registry | None, read: dict[Any, Any]
) -> list[Issue]:
    """Problems of the variant's data; ``read`` memoizes datasets across variants."""
    cases, problems = _cases(variant, spec_path, read)
    key = "dataset" if variant.task.dataset is not None else "cases"
    where = merged.source(("task", key))
    issues = [Issue(where, problem, at_value=True) for problem in _capped(problems)]
    if cases:
        issues += [issue for t in _templates(variant, merged) for issue in _variable_issues(t, cases)]
    if variant.model is not None and variant.model.provider == "python":
        found = function_problem(variant.model.id, spec_path.absolute().parent)
        issues += [Issue(merged.source(("model", "id")), found, at_value=True)] if found else []
    return issues


def _cases(variant: VariantSpec, spec_path: Path, read: dict[Any, Any]) -> tuple[list[Case], list[str]]:
    from ..dataset import read_cases

    task = variant.task
    key = (task.dataset, task.dev_dataset, task.test_dataset, task.cases and repr(task.cases), task.id_field,
           task.expected_field, task.input_field)
    if key not in read:
        read[key] = read_cases(task, spec_path)
    found: tuple[list[Case], list[str]] = read[key]
    return found


def _capped(problems: Sequence[str]) -> list[str]:
    if len(problems) <= MAX_ROW_PROBLEMS:
        return list(problems)
    return [*problems[:MAX_ROW_PROBLEMS], f"... and {len(problems) - MAX_ROW_PROBLEMS} more problems in the dataset"]


def _templates(variant: VariantSpec, merged: Merged) -> Iterator[_Template]:
    """The templates rendered with a case's fields: system, user template, search query."""
    recipe = variant.recipe
    always = frozenset({"context", *recipe.fields, *(("documents",) if variant.retrieval is not None else ())})
    for part, source in (("system", recipe.system), ("template", recipe.template)):
        if not source:
            continue
        if recipe.ref is not None:
            yield _Template(source, merged.source(("recipe", "use")), f"recipe {recipe.ref} {part}", always)
        else:
            yield _Template(source, merged.source(("recipe", part)), "template", always)
    if variant.retrieval is not None:
        yield from _query(variant, merged)


def _query(variant: VariantSpec, merged: Merged) -> Iterator[_Template]:
    """The retrieval query, as the runner builds it (over the case's fields only)."""
    assert variant.retrieval is not None
    given = variant.retrieval.options.get("query")
    if isinstance(given, str):
        yield _Template(given, merged.source(("retrieval", "query")), "retrieval.query", frozenset())
        return
    field = variant.task.input_field or "question"
    label = "the retrieval query (task.input, else 'question'; set retrieval.query to choose)"
    yield _Template(f"{{{{ {field} }}}}", merged.source(("retrieval",)), label, frozenset(), lined=False)


def _variable_issues(template: _Template, cases: Sequence[Case]) -> list[Issue]:
    fields = sorted({name for case in cases for name in case.fields})
    issues = []
    for name, line in undeclared_variables(template.source):
        if name in template.always:
            continue
        lacking = [case for case in cases if name not in case.fields]
        if lacking:
            where = f"{template.label} line {line}" if template.lined else template.label
            message = _variable_message(where, name, lacking, len(cases), fields)
            issues.append(Issue(template.where, message, at_value=True))
    return issues


def _variable_message(where: str, name: str, lacking: Sequence[Case], total: int, fields: list[str]) -> str:
    if len(lacking) == total:
        match = close_match(name, fields)
        hint = f"did you mean '{match}'? " if match is not None else ""
        return f"{where}: undefined variable '{name}': no case has that field ({hint}fields: {', '.join(fields) or 'none'})"
    named = ", ".join(repr(case.id) for case in lacking[:_CASES_NAMED]) + (", ..." if len(lacking) > _CASES_NAMED else "")
    return f"{where}: variable '{name}' is missing from {len(lacking)} of {total} cases ({named})"


def undeclared_variables(source: str) -> list[tuple[str, int]]:
    """The variables a template reads but does not set itself, each with the template
    line that first reads it; [] for a template that does not parse."""
    from jinja2 import TemplateSyntaxError, meta, nodes
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError:
        return []
    names = meta.find_undeclared_variables(tree) - set(env.globals)
    first: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.name in names and node.ctx == "load":
            first.setdefault(node.name, node.lineno)
    return sorted(first.items(), key=lambda item: (item[1], item[0]))


def function_problem(raw: str | None, base_dir: Path) -> str | None:
    """Why the python provider's ``id`` names no function in the project's source, read
    without importing it; None when it is there (or lies outside the project)."""
    from ..provider._python_target import parse_target

    try:
        target = parse_target(raw)
    except ValueError:
        return None  # the provider's own check reports a malformed id
    path = target.file_path(base_dir) if target.file else _module_file(str(target.module), base_dir)
    shown = target.file or str(target.module)
    if path is None or not _is_file(path):
        return None
    return _defines(path, target.attr.split(".")[0], shown)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _module_file(module: str, base_dir: Path) -> Path | None:
    """The source of a module that lives in the spec's folder, if it is one."""
    parts = module.split(".")
    for candidate in (base_dir.joinpath(*parts).with_suffix(".py"), base_dir.joinpath(*parts, "__init__.py")):
        if _is_file(candidate):
            return candidate
    return None


def _defines(path: Path, name: str, shown: str) -> str | None:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        return f"python provider: {shown}:{exc.lineno}: syntax error: {exc.msg}"
    except (OSError, ValueError) as exc:
        return f"python provider: cannot read {shown}: {exc}"
    defined = _top_level_names(tree)
    if defined is None or name in defined:
        return None
    functions = sorted(
        n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")
    )
    match = close_match(name, functions)
    hint = f"did you mean '{match}'? " if match is not None else ""
    return f"python provider: {shown} defines no function '{name}' ({hint}functions: {', '.join(functions) or 'none'})"


def _top_level_names(tree: ast.Module) -> set[str] | None:
    """Names a module binds at its top level; None when it may bind others at run time
    (``from x import *``, a module ``__getattr__``)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        else:
            names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return None if "__getattr__" in names else names
