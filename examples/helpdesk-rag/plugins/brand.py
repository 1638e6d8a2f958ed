"""Nimbus Notes brand rules as llmopt metrics.

Loaded by ``llmopt_plugins = ["plugins.brand"]`` in pyproject.toml, used by
``specs/helpdesk.yaml``:

- ``no_competitor``: 1.0 when an answer names no competing product (support answers
  must never send customers to a competitor), 0.0 otherwise. ``args.names`` replaces
  the built-in list of competitors.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import llmopt
from llmopt.metric import Sample, case_metric

COMPETITORS = ("Evernote", "Notion", "OneNote", "Google Keep", "Obsidian", "Bear", "Simplenote", "Joplin")


def _names(args: Mapping[str, Any]) -> Sequence[str]:
    return args.get("names") or COMPETITORS


@case_metric(name="no_competitor", allowed_args=("names",))
def no_competitor(sample: Sample, args: Mapping[str, Any]) -> float:
    """1.0 when the output names no competitor (args.names overrides the list)."""
    for name in _names(args):
        if re.search(rf"\b{re.escape(name)}\b", sample.output, flags=re.IGNORECASE):
            return 0.0
    return 1.0


@llmopt.hookimpl
def llmopt_metrics() -> list[llmopt.Metric]:
    return [no_competitor]
