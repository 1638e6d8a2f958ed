"""THE prompt builder: a case's chat messages from a variant, for evaluation and for
fine-tuning alike, so a model is trained on exactly the prompts it is evaluated on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ._render import Demo, RenderedPrompt, Renderer

if TYPE_CHECKING:
    from ..dataset import Case
    from ..retrieval import Hit, Index
    from ..spec import VariantSpec

__all__ = ["BuiltPrompt", "build_prompt", "case_variables", "retrieval_query"]


@dataclass(frozen=True)
class BuiltPrompt:
    """A case's prompt, the variables it was rendered with and what was retrieved."""

    prompt: RenderedPrompt
    variables: Mapping[str, Any]
    hits: tuple["Hit", ...] = ()

    @property
    def context(self) -> str | None:
        """The retrieved text as the template saw it (None without retrieval)."""
        value = self.variables.get("context")
        return None if value is None else str(value)


async def case_variables(
    variant: "VariantSpec", case: "Case", index: "Index | None", renderer: Renderer, where: str
) -> tuple[dict[str, Any], tuple["Hit", ...]]:
    """The template variables of a case: its fields, and the retrieved ``context``
    and ``documents`` when the variant retrieves (``context`` is None otherwise)."""
    variables: dict[str, Any] = dict(case.fields)
    variables.setdefault("context", None)
    if index is None or variant.retrieval is None:
        return variables, ()
    from ..retrieval import template_variables

    hits = await index.asearch(retrieval_query(variant, case, renderer, where), variant.retrieval.top_k)
    variables.update(template_variables(hits))
    return variables, tuple(hits)


async def build_prompt(
    variant: "VariantSpec", case: "Case", index: "Index | None", renderer: Renderer, where: str,
    demos: Sequence["Demo"] = (),
) -> BuiltPrompt:
    """Retrieve for the case (when the variant does) and render its recipe, with the
    case's demonstrations (see :mod:`llmopt.engine.demos`)."""
    variables, hits = await case_variables(variant, case, index, renderer, where)
    return BuiltPrompt(renderer.render(variant.recipe, variables, where, demos), variables, hits)


def retrieval_query(variant: "VariantSpec", case: "Case", renderer: Renderer, where: str) -> str:
    """The search query of a case: ``retrieval.query`` (a template), else the
    ``task.input`` field, else ``question``."""
    from ..spec._model import RecipeSpec

    assert variant.retrieval is not None
    template = variant.retrieval.options.get("query") or "{{ %s }}" % (variant.task.input_field or "question")
    return renderer.render(RecipeSpec(template=template), dict(case.fields), where).user
