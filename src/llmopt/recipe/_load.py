"""Loading the recipes folder: every recipe file checked, every problem placed.

A recipe file with problems is kept with them, so a spec that uses it names them
and the specs that do not use it are not affected.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import Problem, SpecError
from ..spec._build import build_demos
from ..spec._model import Guardrails, Location
from ..spec._problems import Issue, KeyPath, Spots, is_dirty, to_problems
from ..spec._schema import schema_issues, schema_validator
from ..spec._yaml import parse_yaml
from ._guard import pattern_problem
from ._model import FieldSpec, Recipe, RecipeBook, RecipeVersion

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

KIND = "recipe file"
_SUFFIXES = (".yaml", ".yml")


def recipe_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of recipe files, as a fresh dict."""
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> "Draft202012Validator":
    return schema_validator(recipe_schema())


def load_book(folder: Path, display: Callable[[Path], str] = str) -> RecipeBook:
    """Every recipe file under ``folder`` (none when it does not exist)."""
    book = RecipeBook(folder=display(folder))
    if not folder.is_dir():
        return book
    recipes: dict[str, Recipe] = {}
    unreadable: dict[str, tuple[Problem, ...]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file()):
        found = read_recipe(path, display(path))
        if isinstance(found, tuple):
            unreadable[display(path)] = found
        elif found.name in recipes:
            recipes[found.name] = _duplicate(recipes[found.name], found)
        else:
            recipes[found.name] = found
    return RecipeBook(folder=book.folder, recipes=recipes, unreadable=unreadable)


def _duplicate(first: Recipe, again: Recipe) -> Recipe:
    problem = Problem(again.path, 1, 1, "recipe", f"recipe '{again.name}' is also defined in {first.path}")
    return Recipe(first.name, first.path, {}, first.description, first.problems + again.problems + (problem,))


def check_recipe(path: Path, shown: str | None = None) -> Recipe:
    """The recipe in the file at ``path``; :class:`SpecError` listing every problem."""
    found = read_recipe(path, str(path) if shown is None else shown)
    problems = found if isinstance(found, tuple) else found.problems
    if problems:
        raise SpecError(problems, kind=KIND)
    assert isinstance(found, Recipe)
    return found


def read_recipe(path: Path, shown: str) -> Recipe | tuple[Problem, ...]:
    """The recipe in one file (with its problems), or only the problems when the
    file does not even name a recipe."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return (Problem(shown, None, None, "", f"cannot read the recipe file: {exc}"),)
    return parse_recipe(text, shown)


def parse_recipe(text: str, shown: str) -> Recipe | tuple[Problem, ...]:
    """The recipe in a recipe file's text (see :func:`read_recipe`)."""
    doc, issues = parse_yaml(text, KIND, "recipe: NAME")
    if doc is None or not isinstance(doc.data, dict):
        return tuple(to_problems(issues, doc.spots if doc else Spots(), shown))
    data = doc.data
    yaml_paths = {issue.path for issue in issues}
    issues += [i for i in schema_issues(data, _validator()) if i.path not in yaml_paths]
    issues += content_issues(data, issues)
    problems = tuple(to_problems(issues, doc.spots, shown))
    name = data.get("recipe")
    if not isinstance(name, str) or is_dirty(issues, [("recipe",)]):
        return problems
    description = data.get("description") or ""
    if problems:
        return Recipe(name, shown, {}, description, problems)
    versions = {int(k): _version(name, int(k), v, Location(shown, *_spot(doc.spots, k))) for k, v in data["versions"].items()}
    return Recipe(name, shown, dict(sorted(versions.items())), description)


def _spot(spots: Spots, key: str) -> tuple[int, int]:
    return spots.find(("versions", key)) or (1, 1)


# -- checks beyond the schema -----------------------------------------------------------


def content_issues(data: dict[str, Any], earlier: list[Issue]) -> list[Issue]:
    """Template syntax, field values and guardrail patterns of every version."""
    versions = data.get("versions")
    issues: list[Issue] = []
    for key, version in (versions or {}).items() if isinstance(versions, dict) else ():
        path: KeyPath = ("versions", key)
        if isinstance(version, dict) and not any(i.concerns == path for i in earlier):
            issues += _template_issues(version, path, earlier)
            issues += _field_issues(version, path, earlier)
            issues += _guardrail_issues(version, path, earlier)
    return issues


def _template_issues(version: dict[str, Any], path: KeyPath, earlier: list[Issue]) -> list[Issue]:
    from ._render import check_template

    places: list[tuple[KeyPath, Any]] = [(path + (k,), version.get(k)) for k in ("system", "template")]
    examples = version.get("examples")
    for index, example in enumerate(examples if isinstance(examples, list) else []):
        if isinstance(example, dict):
            places += [(path + ("examples", index, k), example.get(k)) for k in ("user", "assistant")]
    issues = []
    for where, source in places:
        message = check_template(source) if isinstance(source, str) and not is_dirty(earlier, [where]) else None
        if message is not None:
            issues.append(Issue(where, message, at_value=True))
    return issues


def _field_issues(version: dict[str, Any], path: KeyPath, earlier: list[Issue]) -> list[Issue]:
    fields = version.get("fields")
    issues: list[Issue] = []
    for name, definition in fields.items() if isinstance(fields, dict) else ():
        where = path + ("fields", name)
        if isinstance(definition, dict) and not is_dirty(earlier, [where]):
            issues += _one_field_issues(build_field(name, definition), definition, where)
    return issues


def _one_field_issues(spec: FieldSpec, definition: dict[str, Any], where: KeyPath) -> list[Issue]:
    issues = [
        Issue(where + ("allowed", i), f"allowed value {problem}", at_value=True)
        for i, value in enumerate(spec.allowed or ())
        if (problem := spec.type_problem(value)) is not None
    ]
    check = spec.type_problem if issues else spec.value_problem  # membership needs a clean list
    if spec.required and spec.has_default:
        issues.append(Issue(where + ("default",), "a required field takes no default (give one or the other)"))
    for key in ("default", "example"):
        problem = check(definition[key]) if key in definition else None
        if problem is not None:
            issues.append(Issue(where + (key,), f"{key} {problem}", at_value=True))
    return issues


def _guardrail_issues(version: dict[str, Any], path: KeyPath, earlier: list[Issue]) -> list[Issue]:
    guardrails = version.get("guardrails")
    patterns = guardrails.get("forbidden") if isinstance(guardrails, dict) else None
    issues = []
    for index, pattern in enumerate(patterns if isinstance(patterns, list) else []):
        where = path + ("guardrails", "forbidden", index)
        problem = pattern_problem(pattern) if isinstance(pattern, str) and not is_dirty(earlier, [where]) else None
        if problem is not None:
            issues.append(Issue(where, problem, at_value=True))
    return issues


# -- building ---------------------------------------------------------------------------


def build_field(name: str, definition: dict[str, Any]) -> FieldSpec:
    allowed = definition.get("allowed")
    optional = {k: definition[k] for k in ("default", "example") if k in definition}
    return FieldSpec(
        name=name,
        type=definition["type"],
        required=bool(definition.get("required", False)),
        allowed=tuple(allowed) if isinstance(allowed, list) else None,
        description=definition.get("description") or "",
        **optional,
    )


def _version(name: str, number: int, data: dict[str, Any], location: Location) -> RecipeVersion:
    guardrails = data.get("guardrails") or {}
    return RecipeVersion(
        name=name,
        version=number,
        template=data["template"],
        system=data.get("system"),
        description=data.get("description") or "",
        examples=tuple((e["user"], e["assistant"]) for e in data.get("examples") or ()),
        fields={n: build_field(n, d) for n, d in (data.get("fields") or {}).items()},
        guardrails=Guardrails(
            max_length=guardrails.get("max_length"),
            required=tuple(guardrails.get("required") or ()),
            forbidden=tuple(guardrails.get("forbidden") or ()),
        ),
        location=location,
        demos=build_demos(data.get("demos")),
        provenance=data.get("provenance"),
    )
