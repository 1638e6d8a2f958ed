"""``matches_schema``: 1.0 when the answer holds a JSON object valid against a JSON Schema.

The schema is a file in this project's ``schemas/`` folder, named by ``args.schema``.
The first ``{...}`` object in the answer is checked (models often wrap JSON in prose or
a code fence); an answer without one scores 0.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Mapping

import llmopt
from llmopt.metric import Sample, case_metric

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    path = SCHEMAS / name
    if not path.is_file():
        raise llmopt.MetricError(f"matches_schema: no schema {name!r} in {SCHEMAS}")
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def _first_object(text: str) -> Any:
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            return decoder.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            continue
    return None


@case_metric(name="matches_schema", allowed_args=("schema",))
def matches_schema(sample: Sample, args: Mapping[str, Any]) -> float:
    """1.0 when the answer's first JSON object is valid against ``schemas/<args.schema>``."""
    validator = _validator(str(args.get("schema", "")))
    found = _first_object(sample.output)
    return float(found is not None and validator.is_valid(found))


@llmopt.hookimpl
def llmopt_metrics() -> list[Any]:
    return [matches_schema]
