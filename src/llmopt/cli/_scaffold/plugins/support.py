"""This project's own metrics, loaded by ``llmopt_plugins`` in pyproject.toml."""

from __future__ import annotations

from typing import Any, Mapping

import llmopt
from llmopt.metric import Sample, case_metric


@case_metric(name="concise", allowed_args=("max_words",))
def concise(sample: Sample, args: Mapping[str, Any]) -> bool:
    """1.0 when the answer has at most ``max_words`` words (default 40)."""
    return len(sample.output.split()) <= int(args.get("max_words", 40))


@llmopt.hookimpl
def llmopt_metrics() -> list[Any]:
    return [concise]
