"""The llmopt spec of an import: variants of prompts x providers, assertions, header."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

from ._checks import Slot
from ._notes import Notes, Skipped, Source
from ._prompts import Prompt
from ._providers import Target
from ._tests import Test

_MODEL_KEYS = ("provider", "id", "base_url", "params", "options")


def slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")[:limit].strip("-.") or "x"


def variant_names(prompts: Sequence[Prompt], targets: Sequence[Target]) -> list[tuple[str, Prompt, Target]]:
    """Every (name, prompt, provider) of the matrix, named after what varies."""
    prompt_names = _unique([slug(p.label) for p in prompts])
    target_names = _unique([slug(t.label) for t in targets])
    out = []
    for p, pname in zip(prompts, prompt_names, strict=True):
        for t, tname in zip(targets, target_names, strict=True):
            parts = [pname] if len(prompts) > 1 else []
            parts += [tname] if len(targets) > 1 or not parts else []
            out.append(("-".join(parts), p, t))
    return out


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def recipe_of(prompt: Prompt) -> dict[str, Any]:
    return {"system": prompt.system, "template": prompt.template}


def variants(matrix: list[tuple[str, Prompt, Target]], models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The variants, baseline (the first) as ``{}``; the others override what differs."""
    _, base_prompt, _ = matrix[0]
    base_model = models[matrix[0][0]]
    out: dict[str, Any] = {}
    for name, prompt, _ in matrix:
        override: dict[str, Any] = {}
        if prompt is not base_prompt:
            override["recipe"] = recipe_of(prompt)
        if models[name] != base_model:
            override["model"] = {k: models[name].get(k) for k in _MODEL_KEYS if k in models[name] or k in base_model}
        out[name] = override
    return out


def assertion(slot: Slot, minimum: float) -> dict[str, Any]:
    found: dict[str, Any] = {"metric": slot.metric}
    if slot.args:
        found["args"] = slot.args
    found["min"] = minimum
    return found


def gate(tests: Sequence[Test], given: float | None, source: Source, notes: Notes) -> float:
    """The share of cases each check must pass: ``--threshold``, else the tests' common
    ``threshold``, else 1.0 (every case, as promptfoo decides)."""
    if given is not None:
        return given
    found = {t.threshold for t in tests}
    if len(found) == 1 and None not in found:
        return float(found.pop())  # type: ignore[arg-type]
    if found - {None}:
        notes.skip(source, ("tests",), "tests have different thresholds; every check is gated at 1.0 (pass --threshold)")
    return 1.0


def slot_minimum(slot: Slot, minimum: float, cases: int, notes: Notes) -> float:
    """The min of a slot's assertion: 0.0 (reported, never failing) for weight-0 checks;
    for a check only ``k`` of the ``cases`` make (the others score 1.0), the min that
    asks ``minimum`` of those ``k``: 1 - k (1 - minimum) / cases, rounded down."""
    source, path = slot.origin
    if slot.weights == {0.0}:
        return 0.0
    if 0.0 in slot.weights:
        notes.skip(source, (*path, "weight"), "weight 0 on some cases only: the check is gated on every case")
    elif minimum < 1.0 and slot.weights != {1.0}:
        notes.skip(source, (*path, "weight"), "weights make promptfoo's test score; llmopt gates each check on its own")
    k = len(slot.values)
    return math.floor((1.0 - k * (1.0 - minimum) / cases) * 1e6) / 1e6 if k < cases else minimum


def header(config: str, skipped: Sequence[Skipped], extra: Sequence[str]) -> str:
    lines = [f"Imported from {config} by `llmopt import promptfoo`."]
    lines += list(extra)
    if skipped:
        lines.append(f"Not converted ({len(skipped)}):")
        lines += [f"  {s}" for s in skipped]
    else:
        lines.append("Everything converted.")
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


def dump(spec: dict[str, Any]) -> str:
    """``spec`` as YAML text, multi-line strings as blocks."""
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import LiteralScalarString

    def blocks(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: blocks(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blocks(v) for v in value]
        return LiteralScalarString(value) if isinstance(value, str) and "\n" in value else value

    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(blocks(spec), out)
    return out.getvalue()
