"""Reading a task's cases: from a dataset file or inline, checked, then sampled."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from llmopt.errors import DatasetError

from ._build import build_cases
from ._case import Case
from ._plain import UnsupportedValue, to_plain
from ._readers import read_csv, read_json, read_jsonl
from ._rows import RawRow, RowsResult
from ._sample import sample_cases
from ._split import split_cases, split_parts
from ._yaml_rows import read_yaml

if TYPE_CHECKING:
    from llmopt.spec._model import TaskSpec

__all__ = ["check_task", "check_training", "load_cases", "load_held_out", "load_parts", "load_training_cases", "read_cases"]

MAX_PROBLEMS_SHOWN = 20


class _Problems(DatasetError):
    """A DatasetError that keeps its problems apart, for :func:`read_cases`."""

    def __init__(self, problems: Sequence[str], subject: str) -> None:
        super().__init__(render_problems(problems, subject))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class _Format:
    read: Callable[[Path, str], RowsResult]
    noun: str  # what a row must be, for messages


_FORMATS: Mapping[str, _Format] = MappingProxyType(
    {
        ".jsonl": _Format(read_jsonl, "a JSON object"),
        ".ndjson": _Format(read_jsonl, "a JSON object"),
        ".csv": _Format(read_csv, "a mapping"),
        ".yaml": _Format(read_yaml, "a mapping"),
        ".yml": _Format(read_yaml, "a mapping"),
        ".json": _Format(read_json, "a JSON object"),
    }
)
_FORMAT_NAMES = ".jsonl, .ndjson, .csv, .yaml, .yml or .json"


def check_task(task: TaskSpec, spec_path: Path) -> list[str]:
    """Cheap problems with a task, for collection time: never reads the dataset.

    Checks that the task names its cases one way, that the dataset file exists, is a
    file and has an extension llmopt reads, and that ``sample`` is positive.
    """
    problems = _shape_problems(task)
    for held_out in (task.dev_dataset, task.test_dataset):
        if held_out is not None:
            problems.extend(_file_problems(_resolve(held_out, spec_path), _dataset_label(held_out, spec_path)))
    if task.dataset is not None:
        path = _resolve(task.dataset, spec_path)
        problems.extend(_file_problems(path, _dataset_label(task.dataset, spec_path)))
    return problems


def check_training(task: TaskSpec, spec_path: Path) -> list[str]:
    """Cheap problems with ``task.train`` (the file exists and has a known format)."""
    if task.train is None:
        return []
    return _file_problems(_resolve(task.train, spec_path), _dataset_label(task.train, spec_path))


def load_cases(task: TaskSpec, spec_path: Path, *, unreadable_as_cases: bool = False) -> list[Case]:
    """The task's evaluation cases, read from ``task.cases`` or the file ``task.dataset``.

    A relative ``task.dataset`` is taken from the spec's folder. Raises
    :class:`DatasetError` listing every bad row of the file (up to
    ``MAX_PROBLEMS_SHOWN``). With ``unreadable_as_cases`` (an evaluation), a row that
    cannot be read at all (invalid JSON on its line) is a case of its own, named after
    its line, carrying the error instead. With ``task.split`` only the evaluation part
    is kept (the test part of a held-out split, or ``task.part``: dev for a search);
    ``task.sample`` then picks a seeded subset, in order.
    """
    cases = _part_cases(task, spec_path, unreadable_as_cases)
    return sample_cases(cases, task.sample, task.seed)


def load_parts(task: TaskSpec, spec_path: Path) -> dict[str, list[Case]]:
    """Every part of a task's cases (``train``, ``dev``, ``test``, and ``rest``: what
    a train-only split evaluates), before any sample: for reports and leakage checks."""
    if task.dev_dataset is not None and task.test_dataset is not None:
        dev, test = (_named_file_cases(task, path, spec_path) for path in (task.dev_dataset, task.test_dataset))
        return {"train": [], "dev": dev, "test": test, "rest": []}
    cases = _all_cases(task, spec_path)
    if task.split is None:
        return {"train": [], "dev": [], "test": [], "rest": cases}
    return split_parts(cases, task.split.shares, task.split.seed)


def load_held_out(task: TaskSpec, spec_path: Path) -> list[Case]:
    """Every case training must stay apart from: dev and test of a held-out task
    (what a search selects on and confirms on), else the evaluation cases."""
    if not task.held_out:
        return load_cases(task, spec_path)
    from dataclasses import replace

    dev = _part_cases(replace(task, part="dev"), spec_path, False)
    return dev + _part_cases(replace(task, part="test"), spec_path, False)


def _part_cases(task: TaskSpec, spec_path: Path, unreadable_as_cases: bool) -> list[Case]:
    part = task.part or "test"
    if task.dev_dataset is not None and task.test_dataset is not None:
        path = task.dev_dataset if part == "dev" else task.test_dataset
        return _named_file_cases(task, path, spec_path, unreadable_as_cases)
    cases = _all_cases(task, spec_path, unreadable_as_cases)
    if task.split is None:
        return cases
    chosen = part if task.split.held_out else "rest"
    return split_cases(cases, task.split.shares, task.split.seed, chosen)


def _named_file_cases(task: TaskSpec, path: Path, spec_path: Path, unreadable_as_cases: bool = False) -> list[Case]:
    problems = _file_problems(_resolve(path, spec_path), _dataset_label(path, spec_path))
    if problems:
        raise _Problems(problems, "task")
    label = _dataset_label(path, spec_path)
    return _file_cases(task, _resolve(path, spec_path), label, unreadable_as_cases=unreadable_as_cases)


def read_cases(task: TaskSpec, spec_path: Path) -> tuple[list[Case], list[str]]:
    """Every case of the task (before any split or sample) and every problem found,
    without raising: what ``llmopt validate`` reports."""
    try:
        if task.dev_dataset is not None and task.test_dataset is not None:
            return [c for path in (task.dev_dataset, task.test_dataset) for c in _named_file_cases(task, path, spec_path)], []
        return _all_cases(task, spec_path), []
    except DatasetError as exc:
        return [], list(exc.problems) if isinstance(exc, _Problems) else [str(exc)]


def load_training_cases(task: TaskSpec, spec_path: Path) -> list[Case]:
    """The task's training cases: the file ``task.train`` (read like the dataset, never
    sampled) or the training part of ``task.split``."""
    if task.train is not None:
        problems = check_training(task, spec_path)
        if problems:
            raise DatasetError(render_problems(problems, "task.train"))
        label = _dataset_label(task.train, spec_path)
        return _file_cases(task, _resolve(task.train, spec_path), label, "training dataset")
    if task.split is not None and task.split.train > 0:
        return split_cases(_all_cases(task, spec_path), task.split.shares, task.split.seed, "train")
    raise DatasetError("the task has no training cases: set task.train (a dataset file) or task.split")


def _all_cases(task: TaskSpec, spec_path: Path, unreadable_as_cases: bool = False) -> list[Case]:
    """Every case of ``task.dataset`` or ``task.cases``, before any split or sample."""
    problems = check_task(task, spec_path)
    if problems:
        raise _Problems(problems, "task")
    if task.dataset is not None:
        path = _resolve(task.dataset, spec_path)
        return _file_cases(task, path, _dataset_label(task.dataset, spec_path), unreadable_as_cases=unreadable_as_cases)
    return _inline_cases(task, _spec_label(spec_path))


def render_problems(problems: Sequence[str], subject: str) -> str:
    """One problem as is; several under a count line, at most MAX_PROBLEMS_SHOWN."""
    if len(problems) == 1:
        return problems[0]
    shown = list(problems[:MAX_PROBLEMS_SHOWN])
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    head = f"{len(problems)} problems in {subject}:"
    return "\n".join([head, *(f"  {p}" for p in shown)])


def _shape_problems(task: TaskSpec) -> list[str]:
    problems: list[str] = []
    if task.dataset is None and task.cases is None and task.dev_dataset is None:
        problems.append("task has neither a dataset nor inline cases")
    if task.dataset is not None and task.cases is not None:
        problems.append("task has both a dataset and inline cases: give only one")
    if task.sample is not None and task.sample < 1:
        problems.append(f"task.sample must be at least 1, got {task.sample}")
    return problems


def _file_problems(path: Path, label: str) -> list[str]:
    problems: list[str] = []
    suffix = path.suffix.lower()
    if not suffix:
        problems.append(f"dataset file has no extension: {label} (use {_FORMAT_NAMES})")
    elif suffix not in _FORMATS:
        problems.append(f"unsupported dataset format {suffix!r}: {label} (use {_FORMAT_NAMES})")
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as exc:  # a name too long for the system, say
        return [*problems, f"dataset file cannot be read: {_short(label)} ({exc.strerror or exc})"]
    if not exists:
        problems.append(f"dataset file not found: {label} (resolved to {_resolved(path)})")
    elif not is_file:
        problems.append(f"dataset path is not a file: {label} (resolved to {_resolved(path)})")
    return problems


def _resolved(path: Path) -> Path:
    """``path.resolve()``, or the absolute path when it cannot be resolved (a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _short(label: str) -> str:
    return label if len(label) <= 80 else f"{label[:60]}... ({len(label)} characters)"


def _file_cases(
    task: TaskSpec, path: Path, label: str, kind: str = "dataset", *, unreadable_as_cases: bool = False
) -> list[Case]:
    fmt = _FORMATS[path.suffix.lower()]
    try:
        rows, problems = fmt.read(path, label)
    except OSError as exc:
        raise DatasetError(f"{label}: cannot read the {kind}: {exc.strerror or exc}") from None
    unreadable = [row for row in rows if row.error is not None] if unreadable_as_cases else []
    readable = [row for row in rows if row not in unreadable] if unreadable else rows
    cases = _checked_cases(readable, problems, task, fmt.noun, label, f"{kind} {label}", allow_empty=bool(unreadable))
    return _in_file_order([*cases, *(_unreadable_case(row) for row in unreadable)])


def _unreadable_case(row: RawRow) -> Case:
    """The case of a row that could not be read: named after its line, and an error."""
    return Case(id=row.ref, source=row.where, error=row.problem(str(row.error)))


def _in_file_order(cases: list[Case]) -> list[Case]:
    """Cases in the order of their rows (``path:line``)."""
    def line(case: Case) -> int:
        tail = case.source.rsplit(":", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    return sorted(cases, key=line) if any(c.error is not None for c in cases) else cases


def _inline_cases(task: TaskSpec, spec_label: str) -> list[Case]:
    rows = [_inline_row(value, index, spec_label) for index, value in enumerate(task.cases or ())]
    label = f"{spec_label}: task.cases"
    return _checked_cases(rows, [], task, "a mapping", label, f"task.cases of {spec_label}")


def _inline_row(value: Any, index: int, spec_label: str) -> RawRow:
    lc = getattr(value, "lc", None)
    line = getattr(lc, "line", None)
    where = f"{spec_label}:{line + 1}" if isinstance(line, int) else spec_label
    key = f"task.cases[{index}]"
    try:
        return RawRow(where, key, to_plain(value), key)
    except UnsupportedValue as exc:
        return RawRow(where, key, None, key, error=str(exc))


def _checked_cases(
    rows: list[RawRow], problems: list[str], task: TaskSpec, noun: str, label: str, subject: str,
    *, allow_empty: bool = False,
) -> list[Case]:
    cases, row_problems = build_cases(rows, task, noun)
    problems = [*problems, *row_problems]
    if not problems and not cases and not allow_empty:
        problems.append(f"{label}: the dataset has no cases")
    if problems:
        raise _Problems(problems, subject)
    return cases


def _resolve(dataset: Path, spec_path: Path) -> Path:
    return dataset if dataset.is_absolute() else spec_path.parent / dataset


def _dataset_label(dataset: Path, spec_path: Path) -> str:
    """The dataset's path as given, or relative to the spec's folder, for messages."""
    if not dataset.is_absolute():
        return dataset.as_posix()
    folder = spec_path.parent
    for base in (folder.absolute(), folder.resolve()):
        try:
            return dataset.relative_to(base).as_posix()
        except ValueError:
            continue
    try:
        return Path(os.path.relpath(dataset, folder.resolve())).as_posix()
    except ValueError:  # another drive, on Windows
        return str(dataset)


def _spec_label(spec_path: Path) -> str:
    """The spec's path relative to the working folder when it lies inside it."""
    try:
        return spec_path.absolute().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return spec_path.as_posix()
