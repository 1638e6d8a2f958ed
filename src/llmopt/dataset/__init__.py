"""Datasets: the cases of a task, read from JSONL, CSV, YAML, JSON or inline.

``check_task`` does the cheap checks a collector can afford (the file exists, its
format is known) without reading the file; ``load_cases`` reads, checks, splits and samples the evaluation cases;
``load_training_cases`` reads the training cases (``task.train`` or ``task.split``);
``read_cases`` reads every case and returns the problems instead of raising (for
``llmopt validate``).
"""

from ._case import Case
from ._load import check_task, check_training, load_cases, load_held_out, load_parts, load_training_cases, read_cases
from ._split import split_cases

__all__ = [
    "Case",
    "check_task",
    "check_training",
    "load_cases",
    "load_held_out",
    "load_parts",
    "load_training_cases",
    "read_cases",
    "split_cases",
]
