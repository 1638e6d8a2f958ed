"""Rendering inline recipes: Jinja2 in a sandbox with StrictUndefined."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import RenderError

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

    from ..spec._model import RecipeSpec


@dataclass(frozen=True)
class RenderedPrompt:
    """A recipe rendered for one case: chat messages plus the user text."""

    system: str | None
    user: str

    @property
    def messages(self) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system}] if self.system else []
        out.append({"role": "user", "content": self.user})
        return out


def _environment() -> "SandboxedEnvironment":
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


class Renderer:
    """Compiles templates once and renders them per case.

    Values come in as template variables, never as template source, so template
    syntax inside a dataset value is printed as data and never executed.
    """

    def __init__(self) -> None:
        self._env = _environment()
        self._compile = lru_cache(maxsize=256)(self._env.from_string)

    def render(self, recipe: "RecipeSpec", variables: Mapping[str, Any], where: str) -> RenderedPrompt:
        system = self._render_one(recipe.system, variables, where, "recipe.system") if recipe.system else None
        user = self._render_one(recipe.template, variables, where, "recipe.template")
        return RenderedPrompt(system=system, user=user)

    def _render_one(self, source: str, variables: Mapping[str, Any], where: str, key: str) -> str:
        from jinja2 import TemplateError, UndefinedError

        try:
            template: Template = self._compile(source)
            return template.render(**variables).strip()
        except UndefinedError as exc:
            known = ", ".join(sorted(variables)) or "none"
            raise RenderError(f"{where}: {key}: {exc.message} (available: {known})") from None
        except TemplateError as exc:
            raise RenderError(f"{where}: {key}: {type(exc).__name__}: {exc}") from None


def check_template(source: str) -> str | None:
    """Return a message when ``source`` is not valid template syntax, else None."""
    from jinja2 import TemplateSyntaxError

    try:
        _environment().parse(source)
    except TemplateSyntaxError as exc:
        return f"template syntax error on template line {exc.lineno}: {exc.message}"
    return None
