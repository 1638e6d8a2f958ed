"""Helpers for splicing new lines into a YAML file (a spec, a recipe file) by its text,
so every other byte stays as written: line shapes, indentation, a round-trip YAML that
renders in the file's own layout, and a checked atomic rewrite."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ._files import replace_text

if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import Node

__all__ = ["dash_column", "indent", "is_block", "layout_yaml", "null", "replace_checked", "skippable"]


class Layout(Protocol):
    """How a file indents: mapping indent and the sequence dash offset."""

    @property
    def mapping(self) -> int: ...

    @property
    def offset(self) -> int: ...


def dash_column(lines: list[str], item: "Node") -> int:
    before = lines[item.start_mark.line][: item.start_mark.column].rstrip()
    return len(before) - 1 if before.endswith("-") else max(int(item.start_mark.column) - 2, 0)


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def is_block(node: "Node") -> bool:
    return isinstance(node.value, list) and bool(node.value) and not getattr(node, "flow_style", False)


def null(representer: Any, _: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def replace_checked(path: Path, text: str, original: str, check: Callable[[str], None]) -> None:
    """Write ``text``, read it back and ``check`` it; put ``original`` back if that fails."""
    replace_text(path, text)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            check(handle.read())
    except Exception:
        replace_text(path, original)
        raise


def skippable(line: str, *, comments: bool) -> bool:
    stripped = line.strip()
    return not stripped or (comments and stripped.startswith("#"))


def layout_yaml(layout: Layout) -> "YAML":
    """A round-trip YAML that indents like the file, never wraps, and writes null."""
    from ruamel.yaml import YAML
    from ruamel.yaml.representer import RoundTripRepresenter

    class _Representer(RoundTripRepresenter):  # a subclass: ruamel's own class stays as it is
        pass

    _Representer.add_representer(type(None), null)
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.width = 1 << 16
    yaml.indent(mapping=layout.mapping, sequence=layout.offset + 2, offset=layout.offset)
    return yaml
