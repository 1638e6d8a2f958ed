"""``recipe: {use: name@version, fields: {...}}``: resolved against the recipes folder
when the spec is loaded, so nothing past the loader needs the folder."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ._build import build_demos, build_recipe
from ._merge import Merged
from ._model import RecipeSpec
from ._problems import Issue, KeyPath
from ._suggest import close_match, unknown_name

if TYPE_CHECKING:
    from ..recipe._model import Recipe, RecipeBook, RecipeVersion

LATEST = "latest"


def resolve_recipe(merged: Merged, book: "RecipeBook | None") -> tuple[RecipeSpec | None, list[Issue]]:
    """The variant's recipe; None with the issues when ``use`` cannot be resolved."""
    recipe = merged.data.get("recipe") or {}
    use = recipe.get("use")
    if use is None:
        return build_recipe(recipe), []
    where = merged.source(("recipe", "use"))
    name, _, wanted = str(use).partition("@")
    found = book.find(name) if book is not None else None
    if found is None:
        return None, [Issue(where, _unknown_recipe(name, book), at_value=True)]
    if found.problems:
        return None, [Issue(where, _broken(found), at_value=True)]
    version = _pick(found, wanted or LATEST)
    if version is None:
        versions = ", ".join(map(str, found.versions))
        message = f"recipe '{name}' has no version {wanted} (versions: {versions}; latest: {found.latest})"
        return None, [Issue(where, message, at_value=True)]
    values, issues = field_values(version, recipe.get("fields") or {}, merged, where)
    if issues:
        return None, issues
    spec = version.to_spec(values)
    if "demos" in recipe:  # the spec's demos over the version's (k: 0 for none)
        spec = replace(spec, demos=build_demos(recipe.get("demos")))
    return spec, []


def _pick(recipe: "Recipe", wanted: str) -> "RecipeVersion | None":
    if wanted == LATEST:
        return recipe.versions[recipe.latest] if recipe.latest is not None else None
    return recipe.versions.get(int(wanted)) if wanted.isdigit() else None


def _unknown_recipe(name: str, book: "RecipeBook | None") -> str:
    if book is None:
        return f"unknown recipe '{name}': no recipes folder was given"
    if not book.recipes and not book.unreadable:
        return f"unknown recipe '{name}': no recipes in {book.folder}"
    message = unknown_name("recipe", name, book.names)
    if book.unreadable:
        message += f"; unreadable recipe files: {', '.join(book.unreadable)} (see llmopt recipes lint)"
    return message


def _broken(recipe: "Recipe") -> str:
    count = len(recipe.problems)
    head = f"recipe '{recipe.name}' cannot be used: {count} problem{'s' if count != 1 else ''} in {recipe.path}:"
    return "\n".join([head, *(f"    {p}" for p in recipe.problems)])


def field_values(
    version: "RecipeVersion", given: dict[str, Any], merged: Merged, use_at: KeyPath
) -> tuple[dict[str, Any], list[Issue]]:
    """The field values (defaults, the spec's over them) and the problems of the spec's."""
    issues: list[Issue] = []
    for key, value in given.items():
        where = merged.source(("recipe", "fields", key))
        spec = version.fields.get(key)
        if spec is None:
            issues.append(Issue(where, _unknown_field(key, version)))
        elif (problem := spec.value_problem(value)) is not None:
            message = f"field '{key}' of recipe {version.ref}: {_with_hint(problem, value, spec.allowed)}"
            issues.append(Issue(where, message, at_value=True))
    fields_at = merged.source(("recipe", "fields")) if given else use_at
    for name, spec in version.fields.items():
        if spec.required and name not in given:
            about = f": {spec.description}" if spec.description else ""
            issues.append(Issue(fields_at, f"recipe {version.ref} needs field '{name}'{about}"))
    return {**version.default_values(), **given}, issues


def _unknown_field(key: str, version: "RecipeVersion") -> str:
    names = sorted(version.fields)
    if not names:
        return f"unknown field '{key}': recipe {version.ref} has no fields"
    match = close_match(key, names)
    hint = f"did you mean '{match}'? " if match is not None else ""
    return f"unknown field '{key}' of recipe {version.ref} ({hint}fields: {', '.join(names)})"


def _with_hint(problem: str, value: Any, allowed: "tuple[Any, ...] | None") -> str:
    """``'frindly' is not allowed (did you mean 'friendly'? allowed: ...)``."""
    if allowed is None or not isinstance(value, str) or "is not allowed" not in problem:
        return problem
    match = close_match(value, [a for a in allowed if isinstance(a, str)])
    return problem.replace("(allowed:", f"(did you mean {match!r}? allowed:", 1) if match else problem
