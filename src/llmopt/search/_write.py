"""Writing a search's winner into its spec as a new variant, keeping every other byte.

The file is never dumped whole: its text is spliced. ruamel.yaml composes it (round-trip
mode) to find where ``variants`` and ``assertions`` start and end, and renders only the
new lines, in the file's own indentation; comments, blank lines, key order, quoting,
flow or block style and the lines before ``llmopt: 1`` stay as they were. The new text
is read back before it replaces the file and again after, when the original is put back
if it does not hold what was written.
"""

from __future__ import annotations

import copy
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from ..errors import Problem, SpecError
from ..spec._problems import Spots, to_problems
from ..spec._splice import dash_column as _dash_column
from ..spec._splice import indent as _indent
from ..spec._splice import is_block as _is_block
from ..spec._splice import layout_yaml as _yaml
from ..spec._splice import replace_checked as _replace_checked
from ..spec._splice import skippable as _skippable
from ..spec._yaml import YamlDoc, parse_yaml

if TYPE_CHECKING:
    from ruamel.yaml.nodes import MappingNode, Node

__all__ = ["write_winner"]

#: A variant or an assertion is written on one line (flow style) when it fits in this.
MAX_LINE = 100
#: The top-level sections a new ``variants:`` goes after (the implicit ``default`` variant).
SECTIONS = ("task", "recipe", "retrieval", "model", "finetune")
DEFAULT_VARIANT = "default"
_Lines = list[str]


@dataclass(frozen=True)
class _Layout:
    """How the file indents: a block mapping's keys and a block sequence's dashes
    under their parent key, and the line ending."""

    mapping: int
    offset: int
    newline: str


@dataclass(frozen=True)
class _Text:
    """The text being edited: its lines (with their endings), composed root and layout."""

    lines: _Lines
    root: "MappingNode"
    layout: _Layout

    def pairs(self) -> dict[str, tuple["Node", "Node"]]:
        return {str(key.value): (key, value) for key, value in self.root.value}

    @property
    def column(self) -> int:
        """The column of the top-level keys."""
        return int(self.root.value[0][0].start_mark.column)


def write_winner(
    spec_path: Path,
    *,
    name: str,
    overrides: Mapping[str, Any],
    comment: Sequence[str],
    assertion: Mapping[str, Any] | None,
) -> None:
    """Write variant ``name`` (``overrides`` over the top level) into the spec at
    ``spec_path``, with the ``comment`` lines above its key, and append ``assertion`` to
    ``assertions`` unless an equal entry is there already.

    A variant of that name is replaced in place, with the comment above it. A spec
    without variants gets ``variants:`` after its last top-level section, holding
    ``default: {}`` (the old implicit variant) and the new one. Raises
    :class:`SpecError` (``path:line: key: message``) for a file that cannot be edited
    this way; the file is then left as it was.
    """
    shown = str(spec_path)
    path = Path(os.path.realpath(spec_path))  # a symlinked spec stays a symlink
    original = _read(path, shown)
    doc = _parse(original, shown)
    _check_shapes(doc, shown)
    plain = _plain(overrides)
    wanted = None if assertion is None or _has_entry(doc.data, _plain(assertion)) else _plain(assertion)
    text = _edit(original, shown, lambda t: _with_variant(t, shown, name, plain, comment))
    if wanted is not None:
        text = _edit(text, shown, lambda t: _with_assertion(t, wanted))
    expected = _expected(doc.data, name, plain, wanted)
    _verify(text, expected, shown, name)
    if text != original:
        _replace_checked(path, text, original, lambda written: _verify(written, expected, shown, name))


# -- reading and checking ---------------------------------------------------------------


def _read(path: Path, shown: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError([Problem(shown, None, None, "", f"cannot read the spec: {reason}")]) from None


def _parse(text: str, shown: str) -> YamlDoc:
    doc, issues = parse_yaml(text)
    if doc is None or issues:
        raise SpecError(to_problems(issues, doc.spots if doc is not None else Spots(), shown))
    return doc


def _check_shapes(doc: YamlDoc, shown: str) -> None:
    """Refuse a ``variants`` that is not a mapping and ``assertions`` that is not a list."""
    problems = [
        _problem(doc, shown, key, f"must be {kind} to write the search winner into it, got {_kind(doc.data[key])}")
        for key, kind, fits in (("variants", "a mapping of variant names to overrides", dict), ("assertions", "a list", list))
        if doc.data.get(key) is not None and not isinstance(doc.data[key], fits)
    ]
    if problems:
        raise SpecError(problems)


def _problem(doc: YamlDoc, shown: str, key: str, message: str) -> Problem:
    spot = doc.spots.find((key,))
    return Problem(shown, spot[0] if spot else None, None, key, message)


def _kind(value: Any) -> str:
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else f"{value!r}"


def _plain(value: Any) -> Any:
    """``value`` as the plain data YAML reads back (mappings, lists, text, numbers, null)."""
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError(f"keys of a spec mapping must be text: {list(value)!r}")
        return {str(key): _plain(child) for key, child in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(child) for child in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if value is None:
        return None
    raise TypeError(f"cannot write {type(value).__name__} {value!r} into a spec")


def _has_entry(data: dict[str, Any], assertion: Any) -> bool:
    return any(entry == assertion for entry in data.get("assertions") or [])


def _expected(data: dict[str, Any], name: str, overrides: Any, assertion: Any) -> dict[str, Any]:
    """What the written file must read as."""
    out = copy.deepcopy(data)
    variants = out.get("variants") or ({} if name == DEFAULT_VARIANT else {DEFAULT_VARIANT: {}})
    variants[name] = overrides
    out["variants"] = variants
    if assertion is not None:
        out["assertions"] = [*(out.get("assertions") or []), assertion]
    return out


def _verify(text: str, expected: dict[str, Any], shown: str, name: str) -> None:
    doc, issues = parse_yaml(text)
    if doc is not None and not issues and doc.data == expected:
        return
    why = str(issues[0].message) if issues else "it would read back differently"
    message = f"cannot write the search winner as variant '{name}' ({why}); the file is left as it was"
    raise SpecError([Problem(shown, None, None, "", message)])


# -- editing the text -------------------------------------------------------------------


def _edit(text: str, shown: str, change: Callable[[_Text], _Lines]) -> str:
    """Apply ``change`` to ``text``, keeping whether the file ends with a newline."""
    newline = "\r\n" if "\r\n" in text else "\n"
    ends = text.endswith("\n")
    body = text if ends else text + newline
    lines = _parse_text(body, shown, newline)
    result = "".join(change(lines))
    return result if ends else result[: -len(newline)]


def _parse_text(text: str, shown: str, newline: str) -> _Text:
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode

    root = YAML(typ="rt").compose(text)
    if not isinstance(root, MappingNode) or root.flow_style or not root.value:
        raise SpecError([Problem(shown, 1, None, "", "the spec's top level must be a block mapping to write into it")])
    lines = text.splitlines(keepends=True)
    return _Text(lines, root, _layout(root, lines, newline))


def _with_variant(text: _Text, shown: str, name: str, overrides: Any, comment: Sequence[str]) -> _Lines:
    pairs = text.pairs()
    if "variants" not in pairs:
        return _add_variants(text, name, overrides, comment)
    key, value = pairs["variants"]
    if _is_block(value):
        return _put_variant(text, value, name, overrides, comment)
    if not _is_empty(value) and not value.start_mark.line == value.end_mark.line == key.start_mark.line:
        message = "is written in flow style over several lines; write it in block style to add the search winner"
        raise SpecError([Problem(shown, key.start_mark.line + 1, None, "variants", message)])
    return _unfold_variants(text, key, value, name, overrides, comment)


def _add_variants(text: _Text, name: str, overrides: Any, comment: Sequence[str]) -> _Lines:
    """A new ``variants:`` after the last top-level section: ``default`` and the winner."""
    lines, column = text.lines, text.column
    indent = column + text.layout.mapping
    block = [" " * column + "variants:" + text.layout.newline, *_default(text, name, indent)]
    block += _comment(text, comment, indent) + _entry(text, name, overrides, indent)
    anchors = [(k, v) for k, v in text.root.value if k.value in SECTIONS]
    at = _section_end(lines, anchors[-1][0], anchors[-1][1], column) if anchors else len(lines)
    return lines[:at] + _spaced(text, block, at) + lines[at:]


def _put_variant(text: _Text, variants: "Node", name: str, overrides: Any, comment: Sequence[str]) -> _Lines:
    """Add the winner at the end of a block ``variants``, or replace the variant (and the
    comment above it) where it stands."""
    lines = text.lines
    indent = int(variants.value[0][0].start_mark.column)
    new = _comment(text, comment, indent) + _entry(text, name, overrides, indent)
    for key, value in variants.value:
        if key.value == name:
            start = _comment_start(lines, key.start_mark.line, indent)
            return lines[:start] + new + lines[_last_line(lines, key, value) + 1 :]
    # Right after the last variant, before any comment lines that follow it (such as a
    # commented-out variant), so the comment above the winner is only its own.
    at = _last_line(lines, *variants.value[-1]) + 1
    return lines[:at] + new + lines[at:]


def _unfold_variants(text: _Text, key: "Node", value: "Node", name: str, overrides: Any, comment: Sequence[str]) -> _Lines:
    """A null or one-line flow ``variants`` rewritten in block style: each variant on its
    own line as it was written (``default: {}`` when there were none), then the winner."""
    lines, number = text.lines, key.start_mark.line
    indent = text.column + text.layout.mapping
    pairs = value.value if isinstance(value.value, list) else []
    kept = [_slice(lines[number], k, v) for k, v in pairs if k.value != name]
    block = [" " * indent + written + text.layout.newline for written in kept]
    if not pairs:
        block = _default(text, name, indent)
    block += _comment(text, comment, indent) + _entry(text, name, overrides, indent)
    return lines[:number] + [_without_value(lines[number], value)] + block + lines[number + 1 :]


def _default(text: _Text, name: str, indent: int) -> _Lines:
    """``default: {}``: the variant a spec without variants had, under its old name."""
    return [] if name == DEFAULT_VARIANT else _entry(text, DEFAULT_VARIANT, {}, indent)


def _slice(line: str, key: "Node", value: "Node") -> str:
    """``key: value`` as written in a one-line flow mapping."""
    return line[key.start_mark.column : max(key.end_mark.column, value.end_mark.column)].rstrip(" ,")


def _without_value(line: str, value: "Node") -> str:
    """The key's line with its one-line value taken out (a comment after it stays)."""
    if _is_empty(value):
        return line
    return line[: value.start_mark.column].rstrip() + line[value.end_mark.column :]


def _with_assertion(text: _Text, assertion: Any) -> _Lines:
    lines, pairs = text.lines, text.pairs()
    dash = text.column + text.layout.offset
    if "assertions" not in pairs:
        block = [" " * text.column + "assertions:" + text.layout.newline, *_item(text, assertion, dash, dash + 2, False)]
        return lines + _spaced(text, block, len(lines))
    key, value = pairs["assertions"]
    if _is_block(value):
        last = value.value[-1]
        at = _section_end(lines, key, value, text.column)
        flow = bool(getattr(last, "flow_style", False))
        item = _item(text, assertion, _dash_column(lines, last), int(last.start_mark.column), flow)
        return lines[:at] + item + lines[at:]
    if isinstance(value.value, list):
        return _append_in_flow(text, value, assertion)
    number = key.start_mark.line  # null: the key alone, then the new item under it
    item = _item(text, assertion, dash, dash + 2, False)
    return lines[:number] + [_without_value(lines[number], value)] + item + lines[number + 1 :]


def _append_in_flow(text: _Text, sequence: "Node", assertion: Any) -> _Lines:
    """``[a, b]`` -> ``[a, b, new]``, on the line where the last item ends."""
    lines = list(text.lines)
    mark = sequence.value[-1].end_mark if sequence.value else sequence.start_mark
    column = mark.column if sequence.value else mark.column + 1
    line = lines[mark.line]
    lines[mark.line] = line[:column] + (", " if sequence.value else "") + _inline(_flow(assertion)) + line[column:]
    return lines


def _spaced(text: _Text, block: _Lines, at: int) -> _Lines:
    """``block`` with blank lines around it when the file separates its sections so."""
    lines = text.lines
    keys = [int(k.start_mark.line) for k, _ in text.root.value[1:]]
    if not any(_blank_before(lines, number) for number in keys):
        return block
    after = [text.layout.newline] if at < len(lines) and lines[at].strip() else []
    return [text.layout.newline, *block, *after]


def _blank_before(lines: _Lines, number: int) -> bool:
    while number > 0 and lines[number - 1].lstrip().startswith("#"):
        number -= 1
    return number > 0 and not lines[number - 1].strip()


# -- where things are -------------------------------------------------------------------


def _is_empty(node: "Node") -> bool:
    """A value left out (``key:`` and nothing after it): null, placed where the next
    token starts rather than on the key's line."""
    return node.value == "" and getattr(node, "style", None) is None


def _last_line(lines: _Lines, key: "Node", value: "Node") -> int:
    """The last line (0-based) holding any of ``value``."""
    while _is_block(value):
        last = value.value[-1]
        key, value = last if isinstance(last, tuple) else (key, last)
    empty = _is_empty(value)
    mark = value.start_mark if empty else value.end_mark
    number = mark.line if mark.column > 0 and lines[mark.line][: mark.column].strip() else mark.line - 1
    while number > key.start_mark.line and _skippable(lines[number], comments=empty):
        number -= 1
    return int(number)


def _section_end(lines: _Lines, key: "Node", value: "Node", column: int) -> int:
    """The line after ``key: value`` and the comments indented under it that follow."""
    end = _last_line(lines, key, value) + 1
    for number in range(end, len(lines)):
        stripped = lines[number].strip()
        if stripped.startswith("#") and _indent(lines[number]) > column:
            end = number + 1
        elif stripped:
            break
    return end


def _comment_start(lines: _Lines, number: int, indent: int) -> int:
    """The first of the comment lines right above line ``number`` at ``indent``."""
    while number > 0 and lines[number - 1].lstrip().startswith("#") and _indent(lines[number - 1]) == indent:
        number -= 1
    return number


def _layout(root: "MappingNode", lines: _Lines, newline: str) -> _Layout:
    """The file's indentation as first shown; 2 and 2 for what it does not show."""
    mapping: int | None = None
    offset: int | None = None
    for key, value in _keyed(root):
        if mapping is not None and offset is not None:
            break
        column = int(key.start_mark.column)
        if not _is_block(value):
            continue
        if isinstance(value.value[0], tuple):
            mapping = int(value.value[0][0].start_mark.column) - column if mapping is None else mapping
        else:
            offset = _dash_column(lines, value.value[0]) - column if offset is None else offset
    return _Layout(mapping if mapping and mapping > 0 else 2, offset if offset is not None and offset >= 0 else 2, newline)


def _keyed(root: "Node") -> Iterator[tuple["Node", "Node"]]:
    """Every ``key: value`` pair of block mappings under ``root``, outermost first."""
    todo = [root]
    while todo:
        node = todo.pop(0)
        if not _is_block(node):
            continue
        for child in node.value:
            if isinstance(child, tuple):
                yield child
                todo.append(child[1])
            else:
                todo.append(child)


# -- rendering the new lines ------------------------------------------------------------


def _comment(text: _Text, comment: Sequence[str], indent: int) -> _Lines:
    parts = [part for line in comment for part in line.splitlines() or [""]]
    return [(" " * indent + f"# {part}").rstrip() + text.layout.newline for part in parts]


def _entry(text: _Text, name: str, value: Any, indent: int) -> _Lines:
    """``name: value`` with its key at ``indent``: one line when it fits, else block."""
    layout = text.layout
    styled = _styled(value, indent + len(_inline(name)) + 2, indent + _step(layout, value), layout)
    return _indented(text, _dump(layout, _mapping({name: styled}, flow=False)), indent, indent)


def _item(text: _Text, value: Any, dash: int, column: int, flow: bool) -> _Lines:
    """A sequence item ``- value`` with its dash at ``dash`` and its content at ``column``;
    on one line when ``flow`` and it fits."""
    inline = _inline(_flow(value))
    if not value or (flow and "\n" not in inline and column + len(inline) <= MAX_LINE):
        return _indented(text, inline, dash, column)
    return _indented(text, _dump(text.layout, _block(value, column, text.layout)), dash, column)


def _indented(text: _Text, rendered: str, first: int, rest: int) -> _Lines:
    """``rendered`` moved right: every line to column ``rest``, the first one behind a
    dash at ``first`` when that is another column."""
    lines = rendered.splitlines()
    head = " " * first + ("-" + " " * (rest - first - 1) if rest != first else "")
    return [head + lines[0] + text.layout.newline, *(" " * rest + line + text.layout.newline for line in lines[1:])]


def _step(layout: _Layout, value: Any) -> int:
    """How far right of its key a block value's entries (keys or dashes) start."""
    return layout.offset if isinstance(value, list) else layout.mapping


def _styled(value: Any, used: int, column: int, layout: _Layout) -> Any:
    """``value`` for ruamel: a mapping or list in flow style when it fits on its line
    after ``used`` characters, else in block style with its entries at ``column``."""
    if not isinstance(value, (dict, list)):
        return _literal(value) if _is_literal(value) else value
    inline = _inline(_flow(value))
    if not value or (not _holds_literal(value) and "\n" not in inline and used + len(inline) <= MAX_LINE):
        return _flow(value)
    return _block(value, column, layout)


def _is_literal(value: Any) -> bool:
    """A text of several lines that a ``|`` block writes as it is: no line ends in a space,
    and it ends in at most one newline (a ``|+`` block would take the blank lines after it)."""
    if not isinstance(value, str) or "\n" not in value.rstrip("\n") or value.endswith("\n\n"):
        return False
    if value.startswith((" ", "\n")) or "\r" in value:
        return False
    return all(line == line.rstrip() for line in value.split("\n"))


def _holds_literal(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_literal(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_literal(v) for v in value)
    return _is_literal(value)


def _literal(value: str) -> Any:
    from ruamel.yaml.scalarstring import LiteralScalarString

    return LiteralScalarString(value)


def _block(value: Any, column: int, layout: _Layout) -> Any:
    """A non-empty mapping or list in block style, each of its values styled in turn."""
    from ruamel.yaml.comments import CommentedSeq

    if isinstance(value, dict):
        styled = {k: _styled(v, column + len(_inline(k)) + 2, column + _step(layout, v), layout) for k, v in value.items()}
        return _mapping(styled, flow=False)
    out = CommentedSeq(_styled(item, column + 2, column + 2, layout) for item in value)
    out.fa.set_block_style()
    return out


def _flow(value: Any) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    if isinstance(value, dict):
        return _mapping(value, flow=True)
    if isinstance(value, list):
        out = CommentedSeq(value)
        out.fa.set_flow_style()
        return out
    return value


def _mapping(value: dict[str, Any], *, flow: bool) -> Any:
    from ruamel.yaml.comments import CommentedMap

    out = CommentedMap(value)
    if flow:
        out.fa.set_flow_style()
    else:
        out.fa.set_block_style()
    return out


def _inline(value: Any) -> str:
    """How ``value`` is written as a value in a flow mapping (a flow list would drop the
    braces of a mapping with one key)."""
    written = _dump(_Layout(2, 2, "\n"), _mapping({"k": value}, flow=True)).strip()
    return written[len("{k: ") : -1]


def _dump(layout: _Layout, data: Any) -> str:
    out = io.StringIO()
    _yaml(layout).dump(data, out)
    return out.getvalue()


# -- replacing the file -----------------------------------------------------------------


