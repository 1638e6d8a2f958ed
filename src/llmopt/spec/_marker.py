"""YAML files that are not specs but look as if they were meant to be.

A spec is marked by a top-level ``llmopt:`` key; a file without it is left alone. Two
kinds of file would then vanish silently: one whose marker is misspelt (``llmpot: 1``)
and one that is not UTF-8 text (saved as UTF-16 or UTF-32, say). :func:`lookalike`
says why such a file was not read as a spec, so collection and ``llmopt validate``
can warn about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARKER = "llmopt"
_TOP_KEY = re.compile(r"""^(?:"([^"\n]*)"|'([^'\n]*)'|([^\s#:'"\-?][^:\n]*?))\s*:(?:\s|$)""", re.MULTILINE)
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)
#: How much of a file is read to tell: a marker is near the top.
_HEAD = 64 * 1024


@dataclass(frozen=True)
class Lookalike:
    """Why a YAML file that is not a spec looks like one, and where."""

    message: str
    line: int = 1
    col: int = 1


def lookalike(path: Path) -> Lookalike | None:
    """Why ``path`` (a .yaml/.yml file that is no spec) may have been meant as one:
    a misspelt marker, or text that is not UTF-8; None for an ordinary YAML file and
    for any file that is not YAML (nothing else is read)."""
    from ._loader import _SUFFIXES

    if path.suffix.lower() not in _SUFFIXES:
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
    except IsADirectoryError:
        return None
    except OSError as exc:  # a symlink loop, no permission
        return Lookalike(f"cannot be read, so llmopt cannot tell whether it is a spec ({exc.strerror or exc})")
    encoding = _wide_encoding(head)
    if encoding is not None:
        return _wide(head, *encoding)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the head
            line = head.count(b"\n", 0, exc.start) + 1
            return Lookalike("is not UTF-8 text, so llmopt cannot read it as a spec (save it as UTF-8)", line)
        text = head[: exc.start].decode("utf-8-sig")
    return misspelt_marker(text)


def misspelt_marker(text: str) -> Lookalike | None:
    """A top-level key close to ``llmopt`` (``llmpot``, ``LLMOpt``, ``llm-opt``)."""
    for match in _TOP_KEY.finditer(text):
        key = next(group for group in match.groups() if group is not None).strip()
        if key != MARKER and _near(key):
            line = text.count("\n", 0, match.start()) + 1
            message = (
                f"top-level key '{key}' looks like a misspelt '{MARKER}' marker: the file is not read as a spec "
                f"(a spec starts with '{MARKER}: 1')"
            )
            return Lookalike(message, line)
    return None


def _near(key: str) -> bool:
    word = key.lower()
    if word == MARKER:
        return True
    return len(word) >= 5 and _distance(word, MARKER) <= 2


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn ``a`` into ``b``."""
    if abs(len(a) - len(b)) > 2:
        return 3
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def _wide_encoding(head: bytes) -> tuple[str, str] | None:
    """The UTF-16/32 codec and name of a file that starts with its BOM or with the
    zero bytes such text has around ASCII letters; None for anything else."""
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            return codec, name
    if len(head) >= 4 and head[0] and not any(head[1:4]):
        return "utf-32-le", "UTF-32"
    if len(head) >= 4 and not any(head[0:3]) and head[3]:
        return "utf-32-be", "UTF-32"
    if len(head) >= 2 and head[0] and not head[1]:
        return "utf-16-le", "UTF-16"
    if len(head) >= 2 and not head[0] and head[1]:
        return "utf-16-be", "UTF-16"
    return None


def _wide(head: bytes, codec: str, name: str) -> Lookalike:
    size = 4 if name == "UTF-32" else 2
    text = head[: len(head) - len(head) % size].decode(codec, errors="replace").lstrip("\ufeff")
    if re.search(rf"^{MARKER}\s*:", text, re.MULTILINE):
        return Lookalike(f"is a spec saved as {name}: llmopt reads specs as UTF-8 text only (save it as UTF-8)")
    return Lookalike(f"is {name} text, not UTF-8, so llmopt cannot read it as a spec (save it as UTF-8)")
