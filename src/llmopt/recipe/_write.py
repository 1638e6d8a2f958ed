"""Writing the next version of a recipe file, keeping every byte already in it.

``write_version`` appends version N+1 (N: the file's highest) as a copy of one of its
versions with some parts changed, a description and a ``provenance`` note. The file is
never dumped whole: ruamel.yaml composes it to find where ``versions`` ends, and renders
only the new lines, in the file's own indentation and line endings; comments, quoting,
key order and the other versions stay as they were. The new text must load as a recipe
file holding exactly what was meant, before it replaces the file and again after,
when the original is put back if it does not.

Example texts and system messages are Jinja2 templates over the recipe's fields, so
text shown to the model as written (a demonstration, a proposed instruction) is
written through :func:`literal_template`.
"""

from __future__ import annotations

import copy
import enum
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import Problem, SpecError
from ..spec._splice import dash_column as _dash_column
from ..spec._splice import indent as _indent
from ..spec._splice import is_block as _is_block
from ..spec._splice import layout_yaml as _yaml
from ..spec._splice import replace_checked as _replace_checked
from ..spec._splice import skippable as _skippable
from ..spec._yaml import parse_yaml
from ._load import KIND, parse_recipe
from ._model import Recipe, RecipeVersion, demos_mapping

if TYPE_CHECKING:
    from ruamel.yaml.nodes import MappingNode, Node

    from ..spec._model import DemosSpec
    from ._render import Demo

__all__ = ["UNCHANGED", "equal_version", "literal_template", "version_changes", "with_demos", "with_instruction",
           "write_version"]


class _Unchanged(enum.Enum):
    UNCHANGED = "unchanged"


#: A part of the base version that the new version keeps as it is.
UNCHANGED = _Unchanged.UNCHANGED
#: The order of a written version's keys (the order ``llmopt recipes show`` shows).
ORDER = ("description", "system", "template", "examples", "fields", "guardrails", "demos", "provenance")
#: A short list of plain values is written on one line (flow style) when it fits in this.
MAX_LINE = 100
_FLOW_LIST = 60
_Lines = list[str]
_Pairs = Sequence[tuple[str, str]]
#: Where ruamel.yaml counts a new line (so line numbers agree with its marks).
_BREAK = re.compile("\r\n|[\n\r]")
_MARKS = re.compile(r"\{[{%#]")
_ENDRAW = re.compile(r"\{%-?\s*endraw")
_SLOT = re.compile(r"\{\{\s*instruction\s*\}\}")


@dataclass(frozen=True)
class _Layout:
    """How the file indents block mappings and block sequences, and its line ending."""

    mapping: int
    offset: int
    newline: str


# -- what the new version holds ---------------------------------------------------------


def literal_template(text: str) -> str:
    """A Jinja2 template that renders as ``text``: text with ``{{``, ``{%`` or ``{#`` is
    wrapped in ``{% raw %}...{% endraw %}`` (each mark quoted when the text itself
    holds an ``endraw``)."""
    if not _MARKS.search(text):
        return text
    if not _ENDRAW.search(text):
        return "{% raw %}" + text + "{% endraw %}"
    return _MARKS.sub(lambda mark: "{{ '" + mark.group() + "' }}", text)


def with_instruction(system: str | None, template: str, instruction: str) -> dict[str, str | None]:
    """The system message or template that says ``instruction`` as the renderer does:
    into ``{{ instruction }}`` where the template (or system message) uses it, else as
    the system message."""
    from ._render import Renderer

    renderer = Renderer()
    sources = {"system": system, "template": template}
    using = {key: source for key, source in sources.items() if source and "instruction" in renderer.variables_of(source)}
    if not using:
        return {"system": literal_template(instruction.strip()) or None}
    return {key: _filled(source, instruction, renderer) for key, source in using.items()}


def _filled(source: str, instruction: str, renderer: Any) -> str:
    """``source`` with its ``{{ instruction }}`` replaced by the text; any other use
    (a filter, a condition) reads it from a ``{% set %}`` block put first."""
    text = literal_template(instruction)
    out = _SLOT.sub(lambda _: text, source)
    if "instruction" in renderer.variables_of(out):
        out = "{% set instruction %}" + text + "{% endset %}" + out
    return out


def with_demos(version: RecipeVersion, demos: "DemosSpec | None", fixed: "Sequence[Demo] | None") -> dict[str, Any]:
    """The examples or demos that show ``demos``: the demonstrations random and
    bootstrap chose (``fixed``) as examples, after the version's own (``extend``) or
    instead of them (``replace``); ``demos`` itself for similar (they differ by case),
    when the chosen ones are not known, or when the template shows them as ``{{ demos }}``."""
    from ._render import Renderer

    if demos is None:
        return {"demos": None}
    renderer = Renderer()
    as_block = any("demos" in renderer.variables_of(s) for s in (version.system or "", version.template))
    if demos.select == "similar" or fixed is None or as_block:
        return {"demos": demos_mapping(demos)}
    own = list(version.examples) if demos.examples == "extend" else []
    shown = [(literal_template(demo.prompt), literal_template(demo.answer)) for demo in fixed]
    return {"examples": own + shown, "demos": None}


def version_changes(
    version: RecipeVersion, *, instruction: str | None, demos: "DemosSpec | None", fixed: "Sequence[Demo] | None"
) -> dict[str, Any]:
    """What a version with a generated ``instruction`` and ``demos`` changes in
    ``version`` (keyword arguments of :func:`write_version`)."""
    changes: dict[str, Any] = {}
    if instruction is not None:
        changes.update(with_instruction(version.system, version.template, instruction))
    if demos != version.demos:
        changes.update(with_demos(version, demos, fixed))
    return changes


def write_version(
    path: Path,
    *,
    base: int,
    system: "str | None | _Unchanged" = UNCHANGED,
    template: "str | _Unchanged" = UNCHANGED,
    examples: "_Pairs | _Unchanged" = UNCHANGED,
    demos: "Mapping[str, Any] | None | _Unchanged" = UNCHANGED,
    description: str,
    provenance: Mapping[str, Any],
) -> int:
    """Append version N+1 (N: the file's highest) to the recipe file at ``path``: a copy
    of version ``base`` with the parts given (None removes ``system`` or ``demos``; the
    texts are Jinja2 templates, see :func:`literal_template`), ``description`` and
    ``provenance``. Returns N+1.

    Raises :class:`SpecError` naming the file (and line) when it cannot be read, has
    problems, has no version ``base``, or would not read back as written; the file is
    then left as it was.
    """
    shown = str(path)
    real = Path(os.path.realpath(path))  # a symlinked recipe file stays a symlink
    original = _read(real, shown)
    data = _loaded(original, shown)
    changes = _changes(system=system, template=template, examples=examples, demos=demos)
    entry = _entry(_base(data, base, original, shown), changes, description, provenance)
    number = max(int(key) for key in data["versions"]) + 1
    text = _spliced(original, shown, number, entry)
    expected = {**data, "versions": {**data["versions"], str(number): entry}}
    _verify(text, expected, shown, number)
    _replace_checked(real, text, original, lambda written: _verify(written, expected, shown, number))
    return number


def equal_version(
    path: Path,
    *,
    base: int,
    system: "str | None | _Unchanged" = UNCHANGED,
    template: "str | _Unchanged" = UNCHANGED,
    examples: "_Pairs | _Unchanged" = UNCHANGED,
    demos: "Mapping[str, Any] | None | _Unchanged" = UNCHANGED,
) -> int | None:
    """The highest version of the file that already holds what :func:`write_version`
    would write (descriptions and provenance aside), or None: so writing the same
    winner twice adds one version."""
    shown = str(path)
    data = _loaded(_read(Path(os.path.realpath(path)), shown), shown)
    changes = _changes(system=system, template=template, examples=examples, demos=demos)
    wanted = _content(_entry(_base(data, base, "", shown), changes, "", {}))
    same = [int(key) for key, version in data["versions"].items() if _content(version) == wanted]
    return max(same, default=None)


def _changes(**given: Any) -> dict[str, Any]:
    """The parts given, as the file holds them."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        if value is UNCHANGED:
            continue
        if key == "examples":
            value = [{"user": user, "assistant": assistant} for user, assistant in value]
        out[key] = _plain(value)
    return out


def _base(data: dict[str, Any], base: int, text: str, shown: str) -> dict[str, Any]:
    versions = data["versions"]
    if str(base) in versions:
        return dict(versions[str(base)])
    line = next((n for n, line in enumerate(_lines(text), 1) if line.startswith("versions")), None)
    known = ", ".join(sorted(versions, key=int))
    message = f"has no version {base} to write the next version from (versions: {known})"
    raise SpecError([Problem(shown, line, None, "versions", message)], kind=KIND)


def _entry(base: dict[str, Any], changes: dict[str, Any], description: str, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The new version: ``base`` with the changes, its description and provenance,
    its keys in :data:`ORDER`."""
    out = copy.deepcopy(base)
    for key, value in {**changes, "description": description, "provenance": _plain(dict(provenance))}.items():
        if value is None or value in ("", [], {}):
            out.pop(key, None)
        else:
            out[key] = value
    return {**{k: out[k] for k in ORDER if k in out}, **{k: v for k, v in out.items() if k not in ORDER}}


def _content(version: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in version.items() if key not in ("description", "provenance")}


def _plain(value: Any) -> Any:
    """``value`` as the plain data YAML reads back (mappings, lists, text, numbers, null)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(child) for key, child in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(child) for child in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if value is None:
        return None
    raise TypeError(f"cannot write {type(value).__name__} {value!r} into a recipe file")


# -- reading and checking ---------------------------------------------------------------


def _read(path: Path, shown: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError([Problem(shown, None, None, "", f"cannot read the recipe file: {reason}")], kind=KIND) from None


def _loaded(text: str, shown: str) -> dict[str, Any]:
    """The file's data; :class:`SpecError` with every problem of a file that does not load."""
    body = text.removeprefix("\ufeff")
    found = parse_recipe(body, shown)
    problems = found if isinstance(found, tuple) else found.problems
    if problems:
        raise SpecError(problems, kind=KIND)
    doc, _ = parse_yaml(body, KIND, "recipe: NAME")
    assert doc is not None and isinstance(doc.data, dict)
    return doc.data


def _verify(text: str, expected: dict[str, Any], shown: str, number: int) -> None:
    """Refuse ``text`` unless it loads as a recipe file and reads as ``expected``."""
    body = text.removeprefix("\ufeff")
    found = parse_recipe(body, shown)
    doc, issues = parse_yaml(body, KIND, "recipe: NAME")
    if isinstance(found, Recipe) and not found.problems and doc is not None and not issues and doc.data == expected:
        return
    problems = found if isinstance(found, tuple) else found.problems
    why = problems[0].message if problems else "it would read back differently"
    message = f"cannot write version {number} ({why}); the file is left as it was"
    raise SpecError([Problem(shown, None, None, "", message)], kind=KIND)


# -- splicing the text ------------------------------------------------------------------


def _lines(text: str) -> _Lines:
    """``text`` in lines with their endings, broken where ruamel.yaml breaks them."""
    out, start = [], 0
    for found in _BREAK.finditer(text):
        out.append(text[start : found.end()])
        start = found.end()
    return out + ([text[start:]] if start < len(text) else [])


def _spliced(original: str, shown: str, number: int, entry: dict[str, Any]) -> str:
    """``original`` with version ``number`` after its last version, keeping a byte order
    mark and whether it ends with a newline."""
    from ruamel.yaml import YAML

    bom = "\ufeff" if original.startswith("\ufeff") else ""
    body = original[len(bom) :]
    newline = "\r\n" if "\r\n" in body else "\n"
    ends = body.endswith(("\n", "\r")) or not body
    text = body if ends else body + newline
    root = YAML(typ="rt").compose(text)
    key, value = next((k, v) for k, v in root.value if k.value == "versions")
    lines, layout = _lines(text), _layout(root, _lines(text), newline)
    if _is_block(value):
        lines = _appended(lines, value, number, entry, layout)
    elif value.start_mark.line == value.end_mark.line == key.start_mark.line:
        lines = _unfolded(lines, key, value, number, entry, layout, int(root.value[0][0].start_mark.column))
    else:
        message = "is written in flow style over several lines; write it in block style to add a version"
        raise SpecError([Problem(shown, key.start_mark.line + 1, None, "versions", message)], kind=KIND)
    result = "".join(lines)
    return bom + (result if ends else result[: -len(newline)])


def _appended(lines: _Lines, versions: "Node", number: int, entry: dict[str, Any], layout: _Layout) -> _Lines:
    """The new version right after the last one (and the comments indented under it),
    with a blank line before it when the file separates its versions so."""
    keys = [key for key, _ in versions.value]
    indent = int(keys[0].start_mark.column)
    last_key, last_value = versions.value[-1]
    at = _end(lines, last_key, last_value, indent)
    spaced = any(not lines[key.start_mark.line - 1].strip() for key in keys[1:])
    block = _rendered(number, entry, indent, layout)
    return lines[:at] + ([layout.newline] if spaced else []) + block + lines[at:]


def _unfolded(
    lines: _Lines, key: "Node", value: "Node", number: int, entry: dict[str, Any], layout: _Layout, column: int
) -> _Lines:
    """A one-line flow ``versions`` in block style: each version on its own line as it
    was written, then the new one."""
    line, at = lines[key.start_mark.line], key.start_mark.line
    indent = column + layout.mapping
    kept = [line[k.start_mark.column : v.end_mark.column] for k, v in value.value]
    block = [" " * indent + written + layout.newline for written in kept] + _rendered(number, entry, indent, layout)
    head = line[: value.start_mark.column].rstrip() + line[value.end_mark.column :]
    return lines[:at] + [head] + block + lines[at + 1 :]


def _end(lines: _Lines, key: "Node", value: "Node", indent: int) -> int:
    """The line after the last one holding ``key: value``, and after the comment lines
    indented under it that follow."""
    number = _last_line(lines, key, value)
    while number + 1 < len(lines) and lines[number + 1].lstrip().startswith("#") and _indent(lines[number + 1]) > indent:
        number += 1
    return number + 1


def _last_line(lines: _Lines, key: "Node", value: "Node") -> int:
    """The last line (0-based) holding any of ``value``."""
    while _is_block(value):
        last = value.value[-1]
        key, value = last if isinstance(last, tuple) else (key, last)
    empty = value.value == "" and getattr(value, "style", None) is None  # ``key:`` and nothing
    mark = value.start_mark if empty else value.end_mark
    inside = mark.line < len(lines) and mark.column > 0 and lines[mark.line][: mark.column].strip()
    number = min(mark.line if inside else mark.line - 1, len(lines) - 1)
    while number > key.start_mark.line and _skippable(lines[number], comments=empty):
        number -= 1
    return int(number)


def _layout(root: "MappingNode", lines: _Lines, newline: str) -> _Layout:
    """The file's indentation as first shown; 2 and 2 for what it does not show."""
    mapping: int | None = None
    offset: int | None = None
    todo: list[Node] = [root]
    while todo and (mapping is None or offset is None):
        node = todo.pop(0)
        for key, value in node.value if _is_block(node) and isinstance(node.value[0], tuple) else ():
            todo.append(value)
            if not _is_block(value):
                continue
            first = value.value[0]
            if isinstance(first, tuple) and mapping is None:
                mapping = int(first[0].start_mark.column - key.start_mark.column)
            elif not isinstance(first, tuple) and offset is None:
                offset = _dash_column(lines, first) - int(key.start_mark.column)
    return _Layout(mapping if mapping and mapping > 0 else 2, offset if offset is not None and offset >= 0 else 2, newline)


# -- rendering the new lines ------------------------------------------------------------


def _rendered(number: int, entry: dict[str, Any], indent: int, layout: _Layout) -> _Lines:
    """``number:`` and the version under it, moved right to ``indent``."""
    out = io.StringIO()
    _yaml(layout).dump(_block({number: entry}, indent, layout), out)
    return [(" " * indent + line if line else "") + layout.newline for line in out.getvalue().split("\n")[:-1]]


def _block(value: Any, column: int, layout: _Layout) -> Any:
    """Mappings in block style, short lists of plain values on one line, texts of
    several lines as literal blocks."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict) and value:
        out = CommentedMap()
        for key, child in value.items():
            step = layout.offset if isinstance(child, list) else layout.mapping
            out[key] = _flow_list(child, column + len(str(key)) + 2) or _block(child, column + step, layout)
        out.fa.set_block_style()
        return out
    if isinstance(value, list) and value:
        seq = CommentedSeq(_block(item, column + 2, layout) for item in value)
        seq.fa.set_block_style()
        return seq
    if _is_literal(value):
        from ruamel.yaml.scalarstring import LiteralScalarString

        return LiteralScalarString(value)
    return value


def _flow_list(value: Any, used: int) -> Any:
    """A short list of numbers, booleans or one-word texts in flow style (``[a, b]``), else None."""
    from ruamel.yaml.comments import CommentedSeq

    if not isinstance(value, list) or not value or any(isinstance(v, (dict, list)) for v in value):
        return None
    if any(isinstance(v, str) and (not v or any(c in v for c in " \n:#,[]{}'\"")) for v in value):
        return None
    written = ", ".join(str(v).lower() if isinstance(v, bool) else "null" if v is None else str(v) for v in value)
    if len(written) + 2 > _FLOW_LIST or used + len(written) + 2 > MAX_LINE:
        return None
    out = CommentedSeq(value)
    out.fa.set_flow_style()
    return out


def _is_literal(value: Any) -> bool:
    """A text of several lines (or one line and its newline) that a ``|`` block writes as
    it is: no line ends in a space, and it ends in at most one newline (a ``|+`` block
    would take the blank lines after it)."""
    if not isinstance(value, str) or "\n" not in value or value.endswith("\n\n"):
        return False
    if value.startswith((" ", "\n")) or any(c in value for c in "\r\x85\u2028\u2029\t"):
        return False
    return all(line == line.rstrip() for line in value.split("\n"))


