"""Which way is better for each metric of a results document (``higher_is_better``).

A run records each metric's direction, from its registered metric, in the results JSON
(``scenarios[].variants[].metrics[KEY].higher_is_better``). The reports read it from
there and never guess it from a metric's name. A file written before the field existed
gets it filled in when read: from the registered metric of that name, else True.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..metric._base import Metric

FIELD = "higher_is_better"


def metric_name(key: str) -> str:
    """The metric name of a results key (``regex`` of ``regex(pattern='x')``)."""
    return key.split("(", 1)[0]


def fill_directions(doc: Mapping[str, Any], metrics: Mapping[str, "Metric"]) -> dict[str, Any]:
    """A copy of ``doc`` where every metric entry says its direction: as written, else
    the registered metric's, else True."""
    filled = copy.deepcopy(dict(doc))
    for entry in filled.get("scenarios") or ():
        for variant in (entry.get("variants") or {}).values():
            for key, m in (variant.get("metrics") or {}).items():
                if isinstance(m, dict) and not isinstance(m.get(FIELD), bool):
                    known = metrics.get(metric_name(key))
                    m[FIELD] = bool(known.higher_is_better) if known is not None else True
    return filled


def higher_is_better(metric: Mapping[str, Any] | None) -> bool:
    """The direction of one metric entry (True when it does not say)."""
    value = (metric or {}).get(FIELD)
    return value if isinstance(value, bool) else True


def scenario_direction(entry: Mapping[str, Any], key: str) -> bool:
    """The direction of metric ``key`` in a scenario: from the first variant measuring it."""
    for variant in (entry.get("variants") or {}).values():
        metric = (variant.get("metrics") or {}).get(key)
        if isinstance(metric, Mapping):
            return higher_is_better(metric)
    return True
