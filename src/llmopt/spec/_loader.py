"""Loading a spec file into a validated Scenario, with every problem reported at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import LLMOptError, Problem, SpecError
from ._assertions import assertion_issues, build_assertions, fit_issues, misfit_finder
from ._build import build_variant
from ._external import number_issues, partial_issues, variant_issues, written_issues
from ._merge import SECTIONS, Merged, merge_variant, top_level, variant_names
from ._model import AssertionSpec, Location, Scenario, SearchSpec, VariantSpec
from ._problems import Issue, KeyPath, Spots, is_dirty, to_problems
from ._recipes import resolve_recipe
from ._schema import schema_issues
from ._search import WINNER, build_search, confirmation_assertion, search_issues_early, winner_placeholder
from ._structure import CHECKS, structure_issues
from ._yaml import parse_yaml

if TYPE_CHECKING:
    from ..recipe import RecipeBook
    from ..registry import Registry

_SPEC_MARK = re.compile(r"""^(?:llmopt|"llmopt"|'llmopt')\s*:""", re.MULTILINE)
_SUFFIXES = (".yaml", ".yml")


def is_spec_file(path: Path) -> bool:
    """True for a .yaml/.yml file with a top-level ``llmopt:`` key (a cheap text check)."""
    try:
        if path.suffix.lower() not in _SUFFIXES or not path.is_file():
            return False
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return _SPEC_MARK.search(text.lstrip("\ufeff")) is not None


@dataclass(frozen=True)
class _Lookups:
    """What the loader asks besides the file: names, recipes, and whether to read data."""

    registry: "Registry | None"
    recipes: "RecipeBook | None"
    deep: bool = False
    #: Datasets already read by the deep checks, by task (variants often share one).
    read: dict[Any, Any] = field(default_factory=dict)


def load_scenario(
    path: Path,
    registry: "Registry | None" = None,
    *,
    display_path: str | None = None,
    recipes: "RecipeBook | None" = None,
    deep: bool = False,
) -> Scenario:
    """Load and validate the spec at ``path``.

    Raises :class:`SpecError` listing every problem found; ``display_path`` is how the
    file is named in messages (default ``str(path)``). Without a registry, metric and
    provider names are not checked. ``recipes`` (:func:`llmopt.recipe.load_book`) is
    where ``recipe.use`` is looked up. ``deep`` (``llmopt validate``) also reads each
    dataset and checks it against the templates and the python provider's function.
    """
    shown = str(path) if display_path is None else display_path
    try:
        return _load(path, shown, _Lookups(registry, recipes, deep))
    except LLMOptError:
        raise
    except Exception as exc:  # a bug of llmopt or a plugin: still a message, not a traceback
        message = f"internal error while checking the spec ({type(exc).__name__}: {exc}); please report it"
        raise SpecError([Problem(shown, None, None, "", message)]) from exc


def _load(path: Path, shown: str, lookups: _Lookups) -> Scenario:
    doc, issues = parse_yaml(_read(path, shown))
    if doc is None or not isinstance(doc.data, dict):
        raise SpecError(to_problems(issues, doc.spots if doc else Spots(), shown))
    data = doc.data
    yaml_paths = {issue.path for issue in issues}
    issues += [issue for issue in schema_issues(data) if issue.path not in yaml_paths]
    issues += number_issues(data)
    registry = lookups.registry
    issues += written_issues(data, registry)
    locate = _locator(doc.spots, shown)
    names = variant_names(data)
    issues += search_issues_early(data, names)
    variants, found = _variants(data, names, path, lookups, issues, locate)
    issues += found
    search, found = _search(data, variants, path, lookups, issues, locate)
    issues += found
    if search is not None:
        variants[WINNER] = winner_placeholder(search)
    named = names + [WINNER] if names is not None and isinstance(data.get("search"), dict) else names
    issues += assertion_issues(data, named, registry, issues)
    misfit = misfit_finder(variants, registry)
    issues += fit_issues(data, named, misfit, issues)
    if issues or names is None or named is None:
        raise SpecError(to_problems(issues, doc.spots, shown))
    assertions = build_assertions(data, named, locate, misfit)
    if search is not None:
        assertions += (confirmation_assertion(search, len(assertions)),)
    return replace(_scenario(data, path, variants, assertions, locate), search=search)


def _search(
    data: dict[str, Any],
    variants: dict[str, VariantSpec],
    spec_path: Path,
    lookups: _Lookups,
    earlier: list[Issue],
    locate: Callable[[KeyPath], Location],
) -> tuple[SearchSpec | None, list[Issue]]:
    """The search with its candidates, when the spec has one and nothing it builds on is broken."""
    search = data.get("search")
    if not isinstance(search, dict) or not isinstance(search.get("axes"), dict):
        return None, []
    bad_axes = {axis for axis in search["axes"] if is_dirty(earlier, [("search", "axes", axis)])}
    if is_dirty(earlier, [("search", "from")]):
        return None, []
    # Other problems of the section stop the search, not the checks of its candidates.
    blocked = any(i.concerns[:1] == ("search",) and i.concerns[:2] != ("search", "axes") for i in earlier)
    objective = _objective_issues(search, lookups.registry, earlier)
    def build(merged: Merged) -> tuple[VariantSpec | None, list[Issue]]:
        return _variant(merged, spec_path, lookups, locate, True, [])

    def checks(doc: dict[str, Any], name: str) -> list[Issue]:
        found = schema_issues(doc) + number_issues(doc) + written_issues(doc, lookups.registry)
        return [issue for issue in found if issue.path[:2] == ("variants", name)]

    found, issues = build_search(data, variants, build, locate, checks, skip=bad_axes)
    issues += objective + _proposer_issues(search, lookups.registry, spec_path)
    return (None if blocked or issues else found), issues


def _objective_issues(search: dict[str, Any], registry: "Registry | None", earlier: list[Issue]) -> list[Issue]:
    """The objective's metric and args, checked like an assertion's."""
    objective = search.get("objective")
    if registry is None or not isinstance(objective, dict) or is_dirty(earlier, [("search", "objective")]):
        return []
    from ._assertions import metric_issues

    item = {"metric": objective.get("metric"), "args": objective.get("args") or {}}
    return metric_issues(item, ("search", "objective"), registry)


def _proposer_issues(search: dict[str, Any], registry: "Registry | None", spec_path: Path) -> list[Issue]:
    """The names the generated axes give (the demos' retriever, teacher and metric),
    and the instructions axis's proposer, checked like a model section."""
    demos = search["axes"].get("demos")
    issues: list[Issue] = []
    if registry is not None and isinstance(demos, dict):
        from ._external import demos_name_issues

        issues += demos_name_issues(demos, ("search", "axes", "demos"), registry)
    return issues + _proposer_model_issues(search, registry, spec_path)


def _proposer_model_issues(search: dict[str, Any], registry: "Registry | None", spec_path: Path) -> list[Issue]:
    given = search["axes"].get("instructions")
    proposer = given.get("proposer") if isinstance(given, dict) else None
    if registry is None or not isinstance(proposer, dict) or not isinstance(proposer.get("provider"), str):
        return []
    from ._build import build_model
    from ._external import guarded
    from ._suggest import unknown_name

    where: KeyPath = ("search", "axes", "instructions", "proposer")
    ptype = registry.providers.get(proposer["provider"])
    if ptype is None:
        return [Issue(where + ("provider",), unknown_name("provider", proposer["provider"], sorted(registry.providers)),
                      at_value=True)]
    return [Issue(where, message) for message in guarded(ptype.check, build_model(proposer), spec_path.absolute().parent)]


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
    lookups: _Lookups,
    earlier: list[Issue],
    locate: Callable[[KeyPath], Location],
) -> tuple[dict[str, VariantSpec], list[Issue]]:
    """Build every variant the earlier checks left clean; return them with new issues.

    A variant that cannot be built still has each of its sound sections checked against
    the world (files, folders, providers), so those problems are listed too.
    """
    if names is None:
        return {}, []
    overrides = data.get("variants") or {}
    usable = [n for n in names if isinstance(overrides.get(n), (dict, type(None)))]
    merged_all = [merge_variant(data, name) for name in usable]
    issues, unfit = structure_issues(top_level(data), merged_all, earlier)
    variants: dict[str, VariantSpec] = {}
    checked = [*earlier, *issues]
    for merged in merged_all:
        variant, found = _variant(merged, spec_path, lookups, locate, merged.name not in unfit, checked)
        issues += found
        if variant is not None:
            variants[merged.name] = variant
    return variants, issues


def _variant(
    merged: Merged,
    spec_path: Path,
    lookups: _Lookups,
    locate: Callable[[KeyPath], Location],
    fit: bool,
    checked: list[Issue],
) -> tuple[VariantSpec | None, list[Issue]]:
    """One variant and its problems; an unfit one is None, its sound sections checked."""
    sound = _sound_sections(checked, merged)
    # A named recipe is looked up whenever the recipe section itself is sound, so its
    # problems are listed beside those of other sections (a bad provider, say).
    recipe, issues = resolve_recipe(merged, lookups.recipes) if fit or "recipe" in sound else (None, [])
    if recipe is None or not fit:
        return None, issues + partial_issues(merged, spec_path, lookups.registry, sound)
    variant = build_variant(merged, spec_path, locate, recipe)
    own = variant_issues(variant, merged, spec_path, lookups.registry)
    if lookups.deep and not own:
        from ._deep import deep_issues

        own += deep_issues(variant, merged, spec_path, lookups.registry, lookups.read)
    return variant, issues + own


def _sound_sections(checked: list[Issue], merged: Merged) -> set[str]:
    """The sections of a variant that no problem found so far concerns, and that pass
    the structural checks after merging."""
    gaps = {check.section for check in CHECKS if check.find(merged.data) is not None}
    return {s for s in SECTIONS if s not in gaps and not is_dirty(checked, [(s,), ("variants", merged.name, s)])}


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
