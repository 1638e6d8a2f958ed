"""Datasets: the cases of a task, read from JSONL, CSV, YAML, JSON or inline.

``check_task`` does the cheap checks a collector can afford (the file exists, its
format is known) without reading the file; ``load_cases`` reads, checks and samples.
"""

from ._case import Case
from ._load import check_task, load_cases

__all__ = ["Case", "check_task", "load_cases"]
