"""Prompt recipes: inline ``system`` + ``template`` rendered in a Jinja2 sandbox."""

from ._render import Renderer, RenderedPrompt, check_template

__all__ = ["Renderer", "RenderedPrompt", "check_template"]
