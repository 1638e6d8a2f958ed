"""Prompt recipes: vetted, versioned prompts from the recipes folder, and rendering.

A recipe file names a recipe and its versions; each version has a system message, a
user template, few-shot examples, customizable fields and guardrails. Specs use one
with ``recipe: {use: name@version, fields: {...}}``; templates render in a Jinja2
sandbox with StrictUndefined, and a prompt that breaks a guardrail is a case error.
"""

from ._load import check_recipe, load_book, read_recipe, recipe_schema
from ._model import FieldSpec, Recipe, RecipeBook, RecipeVersion
from ._prompt import BuiltPrompt, build_prompt, case_variables, retrieval_query
from ._render import Demo, RenderedPrompt, Renderer, check_template

__all__ = [
    "BuiltPrompt",
    "build_prompt",
    "case_variables",
    "retrieval_query",
    "FieldSpec",
    "Recipe",
    "RecipeBook",
    "RecipeVersion",
    "Demo",
    "RenderedPrompt",
    "Renderer",
    "check_recipe",
    "check_template",
    "load_book",
    "read_recipe",
    "recipe_schema",
]
