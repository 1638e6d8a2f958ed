"""This project's own metrics, loaded by ``llmopt_plugins`` in pyproject.toml."""

from __future__ import annotations

import llmopt
from llmopt.metric import case_metric


@case_metric(name="concise", allowed_args=("max_words",))
def concise(sample, args):
    """1.0 when the answer has at most ``max_words`` words (default 40)."""
    return len(sample.output.split()) <= int(args.get("max_words", 40))


@llmopt.hookimpl
def llmopt_metrics():
    return [concise]
