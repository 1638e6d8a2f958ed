"""Warnings of the collection phase: YAML files that look like specs but are not read
as such, variants that nothing evaluates, and models whose spend a budget cannot count."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .registry import Registry
    from .spec import Scenario

#: How many YAML files this run skipped with a warning (they look like specs).
SKIPPED_KEY = pytest.StashKey[list[str]]()
#: The variants (``scenario::variant``) this run did not evaluate: no assertion names them.
UNEVALUATED_KEY = pytest.StashKey[list[str]]()


class SpecWarning(UserWarning):
    """A YAML file under the collected folders looks like a spec but is not read as one."""


class VariantWarning(UserWarning):
    """A declared variant is not evaluated: no assertion is on it or compares against it."""


class BudgetWarning(UserWarning):
    """A budget is set but cannot count a model's spend (its price is unknown)."""


def warn_lookalike(path: Path, config: pytest.Config, display: str) -> None:
    """Warn, at the file's line, when a YAML file that is not a spec looks like one
    (a misspelt marker, text that is not UTF-8), and count it for the summary."""
    from .spec import lookalike

    found = lookalike(path)
    if found is None:
        return
    config.stash.setdefault(SKIPPED_KEY, []).append(display)
    warning = SpecWarning(f"{display}:{found.line}:{found.col}: {found.message}")
    warnings.warn_explicit(warning, SpecWarning, str(path), found.line)


def skipped_line(config: pytest.Config) -> str | None:
    """The summary line counting the YAML files skipped with a warning, if any."""
    skipped = config.stash.get(SKIPPED_KEY, [])
    if not skipped:
        return None
    return f"llmopt: {len(skipped)} YAML file(s) look like specs but were not collected (see the warnings): " + ", ".join(skipped)


def unevaluated_variants(scenario: Scenario, config: pytest.Config) -> list[tuple[VariantWarning, str, int | None]]:
    """A VariantWarning (with its file and line) per declared variant that no assertion
    is on or compares against, so it is never run; each is counted for the summary."""
    used = {a.variant for a in scenario.assertions} | {a.vs for a in scenario.assertions if a.vs is not None}
    found: list[tuple[VariantWarning, str, int | None]] = []
    for name, variant in scenario.variants.items():
        if name in used:
            continue
        loc = variant.location if variant.location is not None and variant.location.line else scenario.location
        where = str(loc) if loc is not None else scenario.id
        config.stash.setdefault(UNEVALUATED_KEY, []).append(f"{scenario.id}::{name}")
        message = (
            f"{where}: variant '{name}' has no assertion and no assertion compares against it (vs), "
            "so it is not evaluated and appears in no summary or report: add an assertion on it or remove it"
        )
        found.append((VariantWarning(message), str(scenario.path), loc.line if loc is not None else None))
    return found


def unevaluated_line(config: pytest.Config) -> str | None:
    """The summary line counting the declared variants this run did not evaluate."""
    names = config.stash.get(UNEVALUATED_KEY, [])
    if not names:
        return None
    return f"llmopt: {len(names)} variant(s) not evaluated, no assertion names them (see the warnings): " + ", ".join(names)


def unpriced_warnings(scenario: Scenario, registry: Registry, budget: float | None) -> list[Warning]:
    """Under a budget, one BudgetWarning per hosted model with no known price: its
    spend is unknown (not $0), so the budget cannot stop it."""
    if budget is None:
        return []
    from .provider._hosted import HostedProviderType
    from .provider._pricing import price_for

    found: dict[tuple[str, str], list[str]] = {}
    for name, variant in scenario.variants.items():
        model = variant.model
        if model is None or not isinstance(registry.providers.get(model.provider), HostedProviderType):
            continue
        if price_for(model.id, model.price) is None:
            found.setdefault((model.provider, str(model.id)), []).append(name)
    return [BudgetWarning(_unpriced(scenario, key, names, budget)) for key, names in found.items()]


def _unpriced(scenario: Scenario, key: tuple[str, str], names: list[str], budget: float) -> str:
    provider, model = key
    where = str(scenario.location) if scenario.location else scenario.id
    return (
        f"{where}: model '{model}' ({provider}; variant {', '.join(names)}) has no known price, so its spend is "
        f"unknown, not $0, and --llmopt-budget {budget:g} cannot stop it: set model.price: {{input, output}} "
        "(USD per million tokens)"
    )
