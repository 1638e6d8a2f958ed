"""Raw rows: what a format reader hands on before rows become cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RawRow", "RowsResult", "kind_of"]


@dataclass(frozen=True)
class RawRow:
    """One row as read from a file (or an inline case), not yet checked.

    ``where`` is ``path:line`` (or the spec path for inline cases), ``key`` the key
    path inside a spec (``task.cases[2]``) or ``""``, ``ref`` how a duplicate id
    message points back at this row (``line 3``, ``task.cases[0]``). A row that
    could not be read at all (invalid JSON on that line...) carries ``error``.
    """

    where: str
    ref: str
    value: Any
    key: str = ""
    error: str | None = None

    def problem(self, message: str) -> str:
        """A one-line problem about this row, in the house ``where: key: message`` form."""
        key = f" {self.key}:" if self.key else ""
        return f"{self.where}:{key} {message}"


RowsResult = tuple[list[RawRow], list[str]]
"""What a reader returns: the rows in file order (bad ones carry ``error``) and the
problems that concern the file as a whole (a syntax error, a bad CSV header)."""


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "list"),
    (tuple, "list"),
    (dict, "mapping"),
    (type(None), "null"),
)


def kind_of(value: Any) -> str:
    """A user-facing name for the type of a parsed value (``list``, ``string``...)."""
    for cls, name in _KINDS:
        if isinstance(value, cls):
            return name
    return type(value).__name__
