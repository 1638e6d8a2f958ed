"""One case of a task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Case:
    """A row of a dataset: its stable id, every field, and the reference output.

    ``fields`` holds every column of the row (the expected field included), so a
    template can use any of them. ``source`` is ``path:line`` of the row, for errors.
    ``relevant`` holds the ids of the documents relevant to the case (from the
    ``task.relevant`` field; None when the task names none or the row lacks it).

    ``case["question"]`` (and ``case.get("question")``) reads a field, as the
    ``python`` provider's ``case`` argument (a plain dict of the same fields) does.
    """

    id: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    expected: Any = None
    source: str = ""
    relevant: tuple[str, ...] | None = None
    error: str | None = None

    def __getitem__(self, name: str) -> Any:
        """A field of the row: ``sample.case["question"]`` is ``sample.case.fields["question"]``."""
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A field of the row, or ``default`` when the row lacks it."""
        return self.fields.get(name, default)
