"""Rendering recipes: Jinja2 in a sandbox with StrictUndefined, bounded in time and size
(see ``_bounds``), then the guardrails."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import GuardrailError, RenderError
from ._bounds import (
    LimitExceeded,
    Parts,
    RenderLimits,
    RenderTimeout,
    Watchdog,
    bounded_environment,
    joined,
    text_and_names,
    within_size,
)
from ._guard import breaches

__all__ = ["Demo", "RenderLimits", "RenderedPrompt", "Renderer", "check_template", "demos_block"]

if TYPE_CHECKING:
    from jinja2 import Template, nodes
    from jinja2.sandbox import SandboxedEnvironment

    from ..spec._model import RecipeSpec


#: Made once (``json.dumps`` with options makes a new encoder on every call).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Demo:
    """One demonstration: a training case's id, its input text, its prompt (the
    recipe's user message rendered for it) and the answer shown."""

    id: str
    input: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class RenderedPrompt:
    """A recipe rendered for one case: chat messages plus the user text."""

    system: str | None
    user: str
    #: Few-shot (user, assistant) pairs, sent before the case's user message.
    examples: tuple[tuple[str, str], ...] = ()

    @property
    def messages(self) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system}] if self.system else []
        for user, assistant in self.examples:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        out.append({"role": "user", "content": self.user})
        return out

    @property
    def text(self) -> str:
        """Every message's text, as the guardrails see it."""
        return "\n\n".join(m["content"] for m in self.messages)

    @property
    def hash(self) -> str:
        """``sha256:`` and 12 hex digits of the messages: equal prompts, equal hashes."""
        canonical = _CANONICAL.encode(self.messages)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _environment(limits: RenderLimits | None = None) -> "SandboxedEnvironment":
    from jinja2 import StrictUndefined

    return bounded_environment(limits or RenderLimits(), undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


class Renderer:
    """Compiles templates once and renders them per case.

    Values come in as template variables, never as template source, so template
    syntax inside a dataset value is printed as data and never executed. Each message
    is bounded by ``limits`` (1,000,000 characters, 5 seconds by default).
    """

    def __init__(self, limits: RenderLimits | None = None) -> None:
        self.limits = limits or RenderLimits()
        self._env = _environment(self.limits)
        self._compile = lru_cache(maxsize=256)(self._env.from_string)
        self._watchdog = Watchdog()

    def render(
        self, recipe: "RecipeSpec", variables: Mapping[str, Any], where: str,
        demos: Sequence["Demo"] = (),
    ) -> RenderedPrompt:
        """Render for one case; the recipe's fields are variables too (over the case's).

        ``demos``, already rendered, go after the recipe's own
        examples as earlier turns (instead of them with ``demos.examples: replace``),
        or into the template's ``{{ demos }}`` when it uses that variable. The recipe's
        ``instruction`` fills ``{{ instruction }}`` when the template uses it, else it
        is the system message. Raises :class:`GuardrailError` when the prompt breaks a
        guardrail.
        """
        key = f"recipe {recipe.ref} " if recipe.ref else "recipe."
        values = {**variables, **recipe.fields}
        uses = self.variables_of(recipe.template) | (self.variables_of(recipe.system) if recipe.system else set())
        as_block = "demos" in uses
        if as_block:
            values["demos"] = demos_block(demos)
        if recipe.instruction is not None and "instruction" not in uses:  # the instruction is the system message
            system = recipe.instruction.strip() or None
        else:
            if recipe.instruction is not None:
                values["instruction"] = recipe.instruction
            system = self._render_one(recipe.system, values, where, f"{key}system") if recipe.system else None
        user = self._render_one(recipe.template, values, where, f"{key}template")
        own = () if recipe.demos is not None and recipe.demos.examples == "replace" else recipe.examples
        examples = tuple(
            (
                self._render_one(u, recipe.fields, where, f"{key}examples[{i}].user"),
                self._render_one(a, recipe.fields, where, f"{key}examples[{i}].assistant"),
            )
            for i, (u, a) in enumerate(own)
        )
        if not as_block:
            examples += tuple((demo.prompt, demo.answer) for demo in demos)
        prompt = RenderedPrompt(system=system, user=user, examples=examples)
        found = breaches(recipe.guardrails, prompt.text)
        if found:
            raise GuardrailError(f"{where}: recipe {recipe.ref or '(inline)'}: " + "; ".join(found))
        return prompt

    def variables_of(self, source: str) -> set[str]:
        """The variables a template reads (empty when it does not parse: rendering
        reports that)."""
        return set(_variables_of(source))

    def _render_one(self, source: str, variables: Mapping[str, Any], where: str, key: str) -> str:
        from jinja2 import TemplateError, UndefinedError

        try:
            parts = _text_and_names(source)
            if parts is not None and all(name in variables for is_name, name in parts if is_name):
                text = "".join(str(variables[part]) if is_name else part for is_name, part in parts)
                return within_size(text, self.limits).strip()
            template: Template = self._compile(source)
            return joined(template.generate(**variables), self.limits, self._watchdog).strip()
        except LimitExceeded as exc:
            raise RenderError(f"{where}: {key}: {exc} (a limit of the template sandbox)") from None
        except RenderTimeout:
            raise RenderError(
                f"{where}: {key}: rendering took longer than {self.limits.max_seconds:g} s (a limit of the template sandbox)"
            ) from None
        except UndefinedError as exc:
            known = ", ".join(sorted(variables)) or "none"
            raise RenderError(f"{where}: {key}: {exc.message} (available: {known})") from None
        except TemplateError as exc:
            raise RenderError(f"{where}: {key}: {type(exc).__name__}: {exc}") from None
        except (RecursionError, ArithmeticError, ValueError, TypeError, LookupError, AttributeError, MemoryError) as exc:
            raise RenderError(f"{where}: {key}: the template failed: {type(exc).__name__}: {_short(exc)}") from None


@lru_cache(maxsize=256)
def _tree(source: str) -> "nodes.Template | None":
    """The parsed template (None when it does not parse: rendering reports that),
    read by :func:`_text_and_names` and :func:`_variables_of` alike."""
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().parse(source)
    except TemplateSyntaxError:
        return None


@lru_cache(maxsize=256)
def _text_and_names(source: str) -> Parts | None:
    """``source`` as text and variables when it is only that (see ``text_and_names``):
    it is then rendered by putting each variable's ``str`` in its place, as Jinja
    would, without a template context, a generator or the watchdog per case. A name
    the case does not have goes through Jinja (a global, or the undefined error)."""
    tree = _tree(source)
    return text_and_names(tree) if tree is not None else None


@lru_cache(maxsize=256)
def _variables_of(source: str) -> frozenset[str]:
    from jinja2 import meta

    tree = _tree(source)
    return frozenset(meta.find_undeclared_variables(tree)) if tree is not None else frozenset()


def demos_block(demos: Sequence["Demo"]) -> str:
    """Demonstrations as one block of text, for a template's ``{{ demos }}``."""
    return "\n\n".join(f"Input: {demo.input}\nAnswer: {demo.answer}" for demo in demos)


def check_template(source: str) -> str | None:
    """Return a message when ``source`` is not valid template syntax, else None."""
    from jinja2 import TemplateSyntaxError

    try:
        _environment().parse(source)
    except TemplateSyntaxError as exc:
        return f"template syntax error on template line {exc.lineno}: {exc.message}"
    return None


def _short(exc: BaseException) -> str:
    """An exception's message, cut to one readable line."""
    try:
        text = str(exc)
    except ValueError:  # an int too large to show
        text = type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."
