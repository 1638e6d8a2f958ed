"""Loading a spec file into a validated Scenario, with every problem reported at once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import Problem, SpecError
from ._assertions import assertion_issues, build_assertions, fit_issues, misfit_finder
from ._build import build_variant
from ._external import variant_issues, written_issues
from ._merge import merge_variant, top_level, variant_names
from ._model import AssertionSpec, Location, Scenario, VariantSpec
from ._problems import Issue, KeyPath, Spots, is_dirty, to_problems
from ._recipes import resolve_recipe
from ._schema import schema_issues
from ._structure import structure_issues
from ._yaml import parse_yaml

if TYPE_CHECKING:
    from ..recipe import RecipeBook
    from ..registry import Registry

_SPEC_MARK = re.compile(r"^llmopt\s*:", re.MULTILINE)
_SUFFIXES = (".yaml", ".yml")


def is_spec_file(path: Path) -> bool:
    """True for a .yaml/.yml file with a top-level ``llmopt:`` key (a cheap text check)."""
    if path.suffix.lower() not in _SUFFIXES or not path.is_file():
        return False
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return _SPEC_MARK.search(text.lstrip("\ufeff")) is not None


def load_scenario(
    path: Path,
    registry: "Registry | None" = None,
    *,
    display_path: str | None = None,
    recipes: "RecipeBook | None" = None,
) -> Scenario:
    """Load and validate the spec at ``path``.

    Raises :class:`SpecError` listing every problem found; ``display_path`` is how the
    file is named in messages (default ``str(path)``). Without a registry, metric and
    provider names are not checked. ``recipes`` (:func:`llmopt.recipe.load_book`) is
    where ``recipe.use`` is looked up.
    """
    shown = str(path) if display_path is None else display_path
    doc, issues = parse_yaml(_read(path, shown))
    if doc is None or not isinstance(doc.data, dict):
        raise SpecError(to_problems(issues, doc.spots if doc else Spots(), shown))
    data = doc.data
    yaml_paths = {issue.path for issue in issues}
    issues += [issue for issue in schema_issues(data) if issue.path not in yaml_paths]
    issues += written_issues(data, registry)
    locate = _locator(doc.spots, shown)
    names = variant_names(data)
    variants, found = _variants(data, names, path, (registry, recipes), issues, locate)
    issues += found
    issues += assertion_issues(data, names, registry, issues)
    misfit = misfit_finder(variants, registry)
    issues += fit_issues(data, names, misfit, issues)
    if issues or names is None:
        raise SpecError(to_problems(issues, doc.spots, shown))
    return _scenario(data, path, variants, build_assertions(data, names, locate, misfit), locate)


def _read(path: Path, shown: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError([Problem(shown, None, None, "", f"cannot read the spec: {exc.strerror or exc}")]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError([Problem(shown, line, None, "", "the spec is not UTF-8 text")]) from None


def _locator(spots: Spots, shown: str) -> Callable[[KeyPath], Location]:
    def locate(path: KeyPath) -> Location:
        spot = spots.find(path)
        return Location(shown, *spot) if spot is not None else Location(shown)

    return locate


def _variants(
    data: dict[str, Any],
    names: list[str] | None,
    spec_path: Path,
    lookups: "tuple[Registry | None, RecipeBook | None]",
    earlier: list[Issue],
    locate: Callable[[KeyPath], Location],
) -> tuple[dict[str, VariantSpec], list[Issue]]:
    """Build every variant the earlier checks left clean; return them with new issues."""
    if names is None:
        return {}, []
    overrides = data.get("variants") or {}
    usable = [n for n in names if isinstance(overrides.get(n), (dict, type(None)))]
    merged_all = [merge_variant(data, name) for name in usable]
    issues, unfit = structure_issues(top_level(data), merged_all, earlier)
    registry, recipes = lookups
    variants: dict[str, VariantSpec] = {}
    checked = [*earlier, *issues]
    for merged in merged_all:
        # A named recipe is looked up whenever the recipe section itself is sound, so its
        # problems are listed beside those of other sections (a bad provider, say).
        recipe_sound = not is_dirty(checked, [("recipe",), ("variants", merged.name, "recipe")])
        recipe, found = resolve_recipe(merged, recipes) if merged.name not in unfit or recipe_sound else (None, [])
        issues += found
        if recipe is not None and merged.name not in unfit:
            variant = build_variant(merged, spec_path, locate, recipe)
            issues += variant_issues(variant, merged, spec_path, registry)
            variants[merged.name] = variant
    return variants, issues


def _scenario(
    data: dict[str, Any],
    path: Path,
    variants: dict[str, VariantSpec],
    assertions: tuple[AssertionSpec, ...],
    locate: Callable[[KeyPath], Location],
) -> Scenario:
    return Scenario(
        id=data["scenario"],
        path=path.absolute(),
        description=data.get("description") or "",
        variants=variants,
        assertions=assertions,
        location=locate(("scenario",)),
        correction=None if data.get("correction") in (None, "none") else data["correction"],
        strict_identity=bool(data.get("strict_identity", False)),
    )
