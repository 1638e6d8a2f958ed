"""Nunjucks templates (promptfoo's) as Jinja2 templates (llmopt's).

The shared syntax (``{{ x }}``, filters, ``{% if %}``, ``{% for %}``, ``{% set %}``,
macros, comments, whitespace control) carries over unchanged. What differs is rewritten:
``===``/``!==``, ``elseif``, the ``dump`` filter (``tojson``), JavaScript's ``.length``,
``.trim()``, ``.toUpperCase()``, ``.toLowerCase()``, ``startsWith``/``endsWith``, and
``for k, v in obj`` over an object. What cannot be (includes, JavaScript methods with no
Python twin, regex literals, async tags, filters Jinja2 lacks, ``env``) is reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_BLOCK = re.compile(r"(\{\{.*?\}\}|\{%.*?%\})", re.DOTALL)
_RAW = re.compile(r"(\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\})", re.DOTALL)
_REWRITES = (
    (re.compile(r"!=="), "!="),
    (re.compile(r"==="), "=="),
    (re.compile(r"^(\{%-?\s*)elseif\b"), r"\1elif"),
    (re.compile(r"\|\s*dump\s*\(\s*(\d+)\s*\)"), r"| tojson(indent=\1)"),
    (re.compile(r"\|\s*dump\b"), "| tojson"),
    (re.compile(r"([\w\]\)'\"]+(?:\.\w+)*)\.length\b(?!\s*\()"), r"(\1 | length)"),
    (re.compile(r"\.trim\(\s*\)"), " | trim"),
    (re.compile(r"\.toUpperCase\(\s*\)"), " | upper"),
    (re.compile(r"\.toLowerCase\(\s*\)"), " | lower"),
    (re.compile(r"\.startsWith\("), ".startswith("),
    (re.compile(r"\.endsWith\("), ".endswith("),
)
_FOR_PAIR = re.compile(r"^(\{%-?\s*for\s+\w+\s*,\s*\w+\s+in\s+)(.+?)(\s*-?%\})$", re.DOTALL)
_METHOD = re.compile(r"\.(\w+)\s*\(")
_PY_METHODS = {"items", "keys", "values", "split", "startswith", "endswith", "upper", "lower", "strip", "get"}
_UNSUPPORTED_TAGS = re.compile(r"^\{%-?\s*(include|extends|import|from|asyncEach|asyncAll|ifAsync)\b")
_STRINGS = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")


@dataclass(frozen=True)
class Converted:
    """A template in Jinja2 form and what in it could not be converted."""

    text: str
    problems: tuple[str, ...] = ()


def to_jinja(source: str) -> Converted:
    """``source`` (Nunjucks) as Jinja2, with a problem for each part that differs."""
    problems: list[str] = []
    parts = []
    for piece in _RAW.split(source):
        parts.append(piece if _RAW.fullmatch(piece) else _BLOCK.sub(lambda m: _block(m.group(0), problems), piece))
    text = "".join(parts)
    problems += _compile_problems(text) if not problems else []
    return Converted(text, tuple(dict.fromkeys(problems)))


def _block(block: str, problems: list[str]) -> str:
    tag = _UNSUPPORTED_TAGS.match(block)
    if tag:
        problems.append(f"the Nunjucks tag '{tag.group(1)}' has no converted form")
        return block
    masked, strings = _mask(block)
    for pattern, replacement in _REWRITES:
        masked = pattern.sub(replacement, masked)
    pair = _FOR_PAIR.match(masked)
    if pair:
        target = pair.group(2).strip()
        masked = f"{pair.group(1)}({target}.items() if {target} is mapping else {target}){pair.group(3)}"
    problems += _leftovers(masked)
    return _unmask(masked, strings)


def _mask(block: str) -> tuple[str, list[str]]:
    """``block`` with its string literals replaced by placeholders (kept in order)."""
    strings: list[str] = []

    def keep(match: re.Match[str]) -> str:
        strings.append(match.group(0))
        return f"\x00{len(strings) - 1}\x00"

    return _STRINGS.sub(keep, block), strings


def _unmask(block: str, strings: list[str]) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda m: strings[int(m.group(1))], block)


def _leftovers(block: str) -> list[str]:
    found = [f"the JavaScript method '.{m}()' has no converted form" for m in _METHOD.findall(block) if m not in _PY_METHODS]
    if re.search(r"(^|[\s(=,])r/", block):
        found.append("Nunjucks regular expression literals (r/.../) have no converted form")
    if re.search(r"\benv\.", block):
        found.append("promptfoo's 'env' variable is not available to llmopt templates")
    return found


def _compile_problems(text: str) -> list[str]:
    from jinja2 import TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    try:
        SandboxedEnvironment().from_string(text)
    except TemplateError as exc:
        return [f"not valid as a Jinja2 template: {exc}"]
    return []


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Render a converted template as Nunjucks does: an undefined variable is empty."""
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(autoescape=False).from_string(text).render(**variables)


def variables_of(text: str) -> set[str]:
    """The names a converted template reads from its variables."""
    from jinja2 import meta
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment()
    return set(meta.find_undeclared_variables(env.parse(text)))
