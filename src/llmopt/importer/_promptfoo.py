"""``import_promptfoo``: a promptfoo config as an llmopt spec, its cases and helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._checks import Slot, place_values, slots_of
from ._notes import Notes, Skipped, Source
from ._nunjucks import variables_of
from ._prompts import Prompt, load_prompts
from ._providers import Target, load_providers
from ._source import ConfigError, read_document
from ._spec import (
    assertion,
    dump,
    gate,
    header,
    recipe_of,
    slot_minimum,
    slug,
    variant_names,
    variants,
)
from ._tests import Test, load_tests
from ._write import Files, plugin_location, write_checked

_TOP_KEYS = {"description", "prompts", "providers", "targets", "tests", "defaultTest"}


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote and what it left out."""

    spec: Path
    written: tuple[Path, ...]
    skipped: tuple[Skipped, ...]
    variants: tuple[str, ...]
    cases: int
    plugin: str | None = None


def import_promptfoo(
    config: Path, out: Path, baseline: str | None = None, threshold: float | None = None, force: bool = False
) -> ImportResult:
    """Convert ``config`` into a spec in ``out``; raise ConfigError when it cannot be read."""
    data, source = read_document(config)
    notes = Notes()
    for key in sorted(set(data) - _TOP_KEYS, key=str):
        notes.skip(source, (key,), "this config key has no llmopt form")
    prompts, targets = load_prompts(data, source, notes), load_providers(data, source, notes)
    if not prompts or not targets:
        missing = "prompt" if not prompts else "provider"
        raise ConfigError(f"{source.where(())}: no {missing} could be converted, nothing to import"
                          + "".join(f"\n  {s}" for s in notes.skipped))
    tests = load_tests(data, source, notes) or [Test("test-1", {}, ())]
    name = _scenario(data, config)
    matrix = _ordered(variant_names(prompts, targets), baseline)
    slots = slots_of(tests, notes)
    python = _name_python(slots, name)
    files = _files(name, data, source, matrix, tests, slots, threshold, notes, out, python)
    written = write_checked(files, out, force)
    return ImportResult(out / f"{name}.yaml", tuple(written), tuple(notes.skipped),
                        tuple(n for n, _, _ in matrix), len(tests), files.plugin_module)


def _scenario(data: dict[str, Any], config: Path) -> str:
    if isinstance(data.get("description"), str) and data["description"].strip():
        return slug(data["description"])
    stem = config.resolve().parent.name if config.stem.startswith("promptfooconfig") else config.stem
    return slug(stem)


def _ordered(matrix: list[tuple[str, Prompt, Target]], baseline: str | None) -> list[tuple[str, Prompt, Target]]:
    if baseline is None:
        return matrix
    names = [n for n, _, _ in matrix]
    if baseline not in names:
        raise ConfigError(f"--baseline: no variant named {baseline!r} (variants: {', '.join(names)})")
    return sorted(matrix, key=lambda entry: entry[0] != baseline)


def _name_python(slots: list[Slot], scenario: str) -> list[tuple[str, Any]]:
    """Name each python check's metric after the scenario; the (name, code) pairs."""
    named: dict[str, str] = {}
    for slot in slots:
        if slot.python is not None:
            key = repr(slot.python)
            named.setdefault(key, f"{scenario.replace('-', '_')}_python_{len(named) + 1}")
            slot.metric = named[key]
    codes = {repr(s.python): s.python for s in slots if s.python is not None}
    return [(metric, codes[key]) for key, metric in named.items()]


def _files(
    name: str, data: dict[str, Any], source: Source, matrix: list[tuple[str, Prompt, Target]],
    tests: list[Test], slots: list[Slot], threshold: float | None, notes: Notes, out: Path,
    python: list[tuple[str, Any]],
) -> Files:
    templates = {v for _, p, _ in matrix for t in (p.template, p.system) if t for v in variables_of(t)}
    taken = {k for t in tests for k in t.vars} | templates
    id_field = "id" if "id" not in taken else "_id"
    values = place_values(slots, tests, taken | {id_field, "_description"})
    rows = [_row(t, id_field, templates, values[t.id]) for t in tests]
    minimum = gate(tests, threshold, source, notes)
    plugin_path, plugin_module = plugin_location(out, name) if python else (None, None)
    models, adapters = _models(matrix, name)
    spec = _spec(name, data, matrix, models, id_field, [assertion(s, slot_minimum(s, minimum, len(tests), notes)) for s in slots])
    extra = [f"Baseline: {matrix[0][0]} (the first variant)."]
    if plugin_module:
        extra.append(f"The python assertions are metrics of {plugin_module}: add it to llmopt_plugins.")
    text = header(source.shown, notes.skipped, extra) + dump(spec)
    return Files(name, text, rows, adapters, plugin_path, plugin_module, python)


def _row(test: Test, id_field: str, templates: set[str], checks: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {id_field: test.id, **{v: "" for v in sorted(templates)}, **test.vars, **checks}
    if test.description:
        row["_description"] = test.description
    return row


def _models(matrix: list[tuple[str, Prompt, Target]], name: str) -> tuple[dict[str, dict[str, Any]], list[tuple[Path, str]]]:
    models: dict[str, dict[str, Any]] = {}
    adapters: list[tuple[Path, str]] = []
    for variant, _, target in matrix:
        model = dict(target.model)
        if target.python is not None:
            if target.python not in adapters:
                adapters.append(target.python)
            model["id"] = f"{name}_providers.py:call_{adapters.index(target.python) + 1}"
        models[variant] = model
    return models, adapters


def _spec(
    name: str, data: dict[str, Any], matrix: list[tuple[str, Prompt, Target]],
    models: dict[str, dict[str, Any]], id_field: str, assertions: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    spec: dict[str, Any] = {"llmopt": 1, "scenario": name}
    if isinstance(data.get("description"), str):
        spec["description"] = data["description"]
    spec["task"] = {"dataset": f"{name}.cases.jsonl", "id": id_field}
    spec["recipe"] = {k: v for k, v in recipe_of(matrix[0][1]).items() if v is not None}
    spec["model"] = models[matrix[0][0]]
    if len(matrix) > 1:
        spec["variants"] = variants(matrix, models)
    spec["assertions"] = list(assertions) or [{"metric": "substring", "args": {"value": ""}, "min": 0.0}]
    return spec
