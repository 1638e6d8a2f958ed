"""Writing a fine-tuned model id into a spec, keeping its comments and layout.

A ruamel.yaml round trip: comments, key order, quoting and flow style survive;
only the edited value changes. The indentation of the file is detected and kept,
and lines are never re-wrapped.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..errors import FineTuneError
from ..spec._files import replace_text

__all__ = ["write_model_id"]

_DEFAULT_VARIANT = "default"
_COMMENT = re.compile(r"\s+#.*$")
_DOCUMENT_START = re.compile(r"^---(\s+#.*)?$")


def write_model_id(spec_path: Path, variant: str, model_id: str, *, provider: str | None = None) -> None:
    """Set ``variants.<variant>.model.id`` (and ``model.provider`` when given) in the
    spec at ``spec_path``, creating the variant's ``model`` mapping when absent.

    A spec without ``variants`` has one variant, ``default``: its top-level ``model``
    is edited. Raises :class:`FineTuneError` for an unknown variant or unreadable file.
    """
    preamble, text = _split_preamble(_read(spec_path))
    yaml = _yaml(*_indentation(text))
    try:
        data = yaml.load(text)
    except Exception as exc:  # ruamel raises many error kinds for a broken file
        raise FineTuneError(f"{spec_path}: cannot parse the spec to write the model id: {exc}") from None
    model = _model_mapping(data, variant, spec_path)
    lines = text.splitlines()
    _set(model, "id", model_id, lines)
    if provider is not None:
        _set(model, "provider", provider, lines)
    replace_text(spec_path, preamble + _dump(yaml, data))


def _split_preamble(text: str) -> tuple[str, str]:
    """(the lines up to a leading ``---`` marker, the rest). ruamel drops comments
    written before ``---``, so they are kept aside verbatim."""
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        stripped = line.strip()
        if _DOCUMENT_START.match(stripped):
            return "".join(lines[: number + 1]), "".join(lines[number + 1 :])
        if stripped and not stripped.startswith(("#", "%")):
            break
    return "", text


def _set(mapping: Any, key: str, value: str, lines: list[str]) -> None:
    """Set ``mapping[key]`` in the old value's quoting style, keeping the gap before
    a comment that follows it on the line."""
    old = mapping.get(key)
    new = type(old)(value) if isinstance(old, str) and type(old) is not str else value
    if key in mapping:
        _keep_comment_gap(mapping, key, new, lines)
    mapping[key] = new


def _keep_comment_gap(mapping: Any, key: str, new: str, lines: list[str]) -> None:
    items = getattr(getattr(mapping, "ca", None), "items", {})
    comment = items.get(key, [None] * 3)[2] if len(items.get(key, ())) > 2 else None
    try:
        line, col = mapping.lc.value(key)
    except (KeyError, TypeError, AttributeError):
        return
    if comment is None or line >= len(lines) or not hasattr(comment, "column"):
        return
    before = lines[line][: comment.column]
    gap = len(before) - len(before.rstrip())
    quotes = 2 if type(new) is not str else 0
    comment.column = col + len(new) + quotes + max(gap, 1)


def _read(spec_path: Path) -> str:
    try:
        return spec_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FineTuneError(f"{spec_path}: cannot read the spec: {exc.strerror or exc}") from None


def _model_mapping(data: Any, variant: str, spec_path: Path) -> Any:
    """The mapping to edit: the variant's ``model`` (created when absent or null)."""
    if not isinstance(data, dict):
        raise FineTuneError(f"{spec_path}: the spec is not a mapping")
    variants = data.get("variants")
    if not variants and variant == _DEFAULT_VARIANT:
        return _child_mapping(data, "model")
    if not isinstance(variants, dict) or variant not in variants:
        known = ", ".join(variants) if isinstance(variants, dict) and variants else _DEFAULT_VARIANT
        raise FineTuneError(f"{spec_path}: no variant {variant!r} (variants: {known})")
    if not isinstance(variants[variant], dict):
        variants[variant] = _new_mapping(flow=False)
    return _child_mapping(variants[variant], "model")


def _child_mapping(parent: Any, key: str) -> Any:
    """``parent[key]``, made a mapping when absent or not one. An empty parent was
    written ``{}``: it stays on its line, in flow style."""
    child = parent.get(key)
    if not parent and hasattr(parent, "fa"):
        parent.fa.set_flow_style()
    if not isinstance(child, dict):
        flow = bool(getattr(getattr(parent, "fa", None), "flow_style", lambda: False)())
        child = _new_mapping(flow=flow)
        parent[key] = child
    return child


def _new_mapping(*, flow: bool) -> Any:
    from ruamel.yaml.comments import CommentedMap

    mapping = CommentedMap()
    if flow:
        mapping.fa.set_flow_style()
    return mapping


def _indentation(text: str) -> tuple[int, int]:
    """(mapping indent, offset of a block sequence's dash under its key) as first
    used in ``text``; (2, 0) for what the file does not show."""
    mapping: int | None = None
    offset: int | None = None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for parent, child in pairwise(lines):
        if not _COMMENT.sub("", parent).rstrip().endswith(":"):
            continue
        step = _indent_of(child) - _indent_of(parent)
        if child.lstrip().startswith("- ") and offset is None and step >= 0:
            offset = step
        elif not child.lstrip().startswith("- ") and mapping is None and step > 0:
            mapping = step
    return mapping or 2, offset or 0


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _yaml(mapping: int, offset: int) -> Any:
    """A round-trip YAML that keeps quotes, never re-wraps, and indents like the file."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 16
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    # ruamel writes None as an empty value; specs spell "remove this part" as null.
    yaml.representer.add_representer(type(None), _null)
    return yaml


def _null(representer: Any, _: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _dump(yaml: Any, data: Any) -> str:
    import io

    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
