"""Safe YAML loading into plain Python data, keeping where every key and value was.

The text is composed into a node tree by ruamel.yaml (YAML 1.2) and walked here: nothing but
mappings, lists, strings, numbers, booleans and null is ever built, so tags that would
construct objects only produce a problem. Duplicate keys and recursive aliases are
problems too, each at its line.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._problems import Issue, KeyPath, Spots

if TYPE_CHECKING:
    from ruamel.yaml.constructor import SafeConstructor
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.nodes import MappingNode, Node

_CORE = "tag:yaml.org,2002:"
_MAP, _SEQ, _MERGE = _CORE + "map", _CORE + "seq", _CORE + "merge"
_STR, _NULL, _BOOL = _CORE + "str", _CORE + "null", _CORE + "bool"
_INT, _FLOAT, _TIMESTAMP = _CORE + "int", _CORE + "float", _CORE + "timestamp"
_SCALAR_TAGS = {_STR, _NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP}
#: Upper bound on values built, so aliases cannot blow a small file up.
_MAX_VALUES = 100_000
#: How deep mappings and lists may nest; deeper documents are refused, not recursed into.
MAX_DEPTH = 64
#: Whole numbers beyond this many bits cannot even be printed in decimal (Python's limit).
_MAX_INT_BITS = 14_000
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class YamlDoc:
    """A parsed document: plain data plus the positions of its keys and values."""

    data: Any
    spots: Spots


def parse_yaml(text: str, kind: str = "spec", start: str = "llmopt: 1") -> tuple[YamlDoc | None, list[Issue]]:
    """Parse ``text``; the document is None when nothing usable could be read.

    ``kind`` names the file in messages ("spec", "recipe file"); ``start`` is the key a
    file of that kind starts with.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        with warnings.catch_warnings():  # a reused anchor is valid YAML: the later one counts
            warnings.simplefilter("ignore")
            root = yaml.compose(text)
    except MarkedYAMLError as exc:
        return None, [_syntax_issue(exc)]
    except YAMLError as exc:
        return None, [_reader_issue(exc, text)]
    except RecursionError:
        return None, [_too_deep(text)]
    if root is None:
        return None, [Issue((), f"the file is empty; a {kind} starts with '{start}'", line=1, col=1)]
    walker = _Walker(yaml.constructor, kind)
    data = walker.value(root, ())
    if not isinstance(data, dict) and not walker.issues:
        walker.issues.append(Issue((), f"a {kind} must be a mapping of keys, got {_kind(data)}", at_value=True))
    return YamlDoc(data, Spots(walker.keys, walker.values)), walker.issues


def _syntax_issue(exc: "MarkedYAMLError") -> Issue:
    mark = exc.problem_mark or exc.context_mark
    message = f"YAML syntax error: {exc.problem or exc.context}"
    if exc.problem and exc.context:
        where = f" started on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{where})"
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    return Issue((), message, line=line, col=col)


def _reader_issue(exc: Exception, text: str) -> Issue:
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        char = getattr(exc, "character", "?")
        reason = getattr(exc, "reason", "not allowed")
        return Issue((), f"YAML error: character #x{char:04x}: {reason}", line=line, col=col)
    return Issue((), f"YAML error: {exc}")


def _too_deep(text: str) -> Issue:
    """Where a document too deep to compose first nests beyond MAX_DEPTH (read by events,
    which needs no recursion)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    depth = 0
    try:
        for event in YAML(typ="safe", pure=True).parse(text):
            depth += isinstance(event, CollectionStartEvent) - isinstance(event, CollectionEndEvent)
            if depth > MAX_DEPTH:
                mark = event.start_mark
                return Issue((), _deep_message(), line=mark.line + 1, col=mark.column + 1)
    except (YAMLError, RecursionError):
        pass
    return Issue((), _deep_message(), line=1, col=1)


def _deep_message() -> str:
    return f"mappings and lists nest more than {MAX_DEPTH} levels deep"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else f"the value {value!r}"


def _show_tag(tag: str | None) -> str:
    tag = tag or "!"
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


class _Walker:
    """Turns composed nodes into plain data, recording positions and problems."""

    def __init__(self, constructor: "SafeConstructor", kind: str = "spec") -> None:
        self.constructor = constructor
        self.kind = kind
        self.keys: dict[KeyPath, tuple[int, int]] = {}
        self.values: dict[KeyPath, tuple[int, int]] = {}
        self.issues: list[Issue] = []
        self._active: set[int] = set()
        self._count = 0
        self._deep_reported = False

    def value(self, node: "Node", path: KeyPath) -> Any:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        self.values[path] = _spot(node)
        if not self._enter(node, path):
            return None
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _enter(self, node: "Node", path: KeyPath) -> bool:
        self._count += 1
        if len(path) > MAX_DEPTH:
            if not self._deep_reported:
                self._deep_reported = True
                line, col = _spot(node)
                self.issues.append(Issue(path[:2], _deep_message(), line=line, col=col))
            return False
        if self._count > _MAX_VALUES:
            if self._count == _MAX_VALUES + 1:
                self.issues.append(Issue(path, "too many values (are aliases expanding?)", at_value=True))
            return False
        if id(node) in self._active:
            self.issues.append(Issue(path, "an alias refers to a value that contains it", at_value=True))
            return False
        self._active.add(id(node))
        return True

    def _refuse_tag(self, node: "Node", path: KeyPath) -> None:
        self.issues.append(Issue(path, _refused(node.tag, self.kind), at_value=True))

    def _sequence(self, node: "Node", path: KeyPath) -> list[Any]:
        if node.tag != _SEQ:
            self._refuse_tag(node, path)
        out = []
        for index, item in enumerate(node.value):
            self.keys[path + (index,)] = _spot(item)
            out.append(self.value(item, path + (index,)))
        return out

    def _mapping(self, node: "MappingNode", path: KeyPath) -> dict[str, Any]:
        if node.tag != _MAP:
            self._refuse_tag(node, path)
        out: dict[str, Any] = {}
        merges = self._fill(node, path, out)
        for source in merges:
            self._merge_into(source, path, out)
        return out

    def _fill(self, node: "MappingNode", path: KeyPath, out: dict[str, Any], explicit: bool = True) -> list["Node"]:
        """Add the keys of ``node`` to ``out``; return the values of ``<<`` merge keys."""
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = self._key(key_node, path)
            if key is None or (key in out and not explicit):
                continue
            if key in out:
                self._duplicate(key_node, path + (key,))
                continue
            self.keys[path + (key,)] = _spot(key_node)
            out[key] = self.value(value_node, path + (key,))
        return merges

    def _duplicate(self, key_node: "Node", path: KeyPath) -> None:
        first = self.keys[path][0]
        line, col = _spot(key_node)
        message = f"duplicate key '{path[-1]}' (first on line {first})"
        self.issues.append(Issue(path, message, line=line, col=col))

    def _merge_into(self, source: "Node", path: KeyPath, out: dict[str, Any]) -> None:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        parts = source.value if isinstance(source, SequenceNode) else [source]
        for part in parts:
            if isinstance(part, MappingNode):
                self._fill(part, path, out, explicit=False)
            else:
                self.issues.append(Issue(path, "'<<' must merge a mapping or a list of mappings"))

    def _key(self, node: "Node", path: KeyPath) -> str | None:
        from ruamel.yaml.nodes import ScalarNode

        if isinstance(node, ScalarNode):
            key = self._text(node, path, str(node.value))
            if node.tag not in _SCALAR_TAGS:
                line, col = _spot(node)
                self.issues.append(Issue(path + (key,), _refused(node.tag, self.kind), line=line, col=col))
            return key
        spot = _spot(node)
        self.issues.append(Issue(path, "a key must be plain text", line=spot[0], col=spot[1]))
        return None

    def _scalar(self, node: "Node", path: KeyPath) -> Any:
        tag, text = node.tag, node.value
        if tag not in _SCALAR_TAGS:
            self._refuse_tag(node, path)
            return text
        if tag in (_STR, _TIMESTAMP):
            return self._text(node, path, text)
        if tag == _NULL:
            return None
        if tag == _BOOL and text.lower() in ("true", "false"):
            return text.lower() == "true"
        return self._number(node, path)

    def _text(self, node: "Node", path: KeyPath, text: str) -> str:
        """``text`` with lone surrogates (``"\\ud800"`` escapes) refused and replaced,
        so no later step meets a string that cannot be encoded."""
        if _SURROGATE.search(text) is None:
            return text
        line, col = _spot(node)
        message = "holds a lone surrogate escape (such as \\ud800), which is not valid Unicode text"
        self.issues.append(Issue(path, message, line=line, col=col))
        return _SURROGATE.sub("\ufffd", text)

    def _number(self, node: "Node", path: KeyPath) -> Any:
        try:
            if node.tag == _INT:
                number = int(self.constructor.construct_yaml_int(node))
                if number.bit_length() <= _MAX_INT_BITS:
                    return number
            elif node.tag == _FLOAT:
                return float(self.constructor.construct_yaml_float(node))
        except (ValueError, TypeError, ArithmeticError):
            pass
        shown = node.value if len(node.value) <= 40 else node.value[:30] + f"... ({len(node.value)} characters)"
        self.issues.append(Issue(path, f"cannot read {shown!r} as {_show_tag(node.tag)}", at_value=True))
        return shown


def _refused(tag: str | None, kind: str = "spec") -> str:
    return f"tag '{_show_tag(tag)}' is not allowed: a {kind} holds plain data only"


def _spot(node: "Node") -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)
